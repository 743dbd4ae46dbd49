"""``python -m aigateway.serve``: uvicorn's command line with a supervisor of our own.

Two things stock ``uvicorn --workers N`` does that a gateway must not:

- **Unbalanced workers.** The workers share one listening socket and take connections as
  they race for them. Clients with long-lived keep-alive connections (SDKs, load
  balancers, benchmarks) open them in a burst, so one worker may hold twice the other's
  connections for their whole life: measured here, 176 / 80 of 256, and the busier worker
  saturated a core while the other idled. On Linux each worker gets a socket of its own
  bound with ``SO_REUSEPORT`` instead: the kernel spreads new connections evenly over them.
- **A drain that hangs new connections.** The supervisor held the listening socket until
  every worker had exited, so during a graceful shutdown (up to
  ``--timeout-graceful-shutdown`` while streams finish) the kernel kept completing
  handshakes nobody accepted, and those clients were reset when it exited. The supervisor
  now closes its sockets as it tells the workers to stop (each worker closes its own as its
  shutdown starts): new connections are refused at once while accepted ones finish.

It also sends each response's head and body in one write
(``aigateway/core/http_protocol.py``) unless ``--http`` names another protocol.

Every flag of ``uvicorn`` works the same (``python -m aigateway.serve --help``).
"""

from __future__ import annotations

import importlib
import logging
import socket
import sys
from typing import Any

from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")


def reuseport_sockets(config: Any, shared: list[socket.socket]) -> list[socket.socket] | None:
    """One ``SO_REUSEPORT`` socket per worker on the shared socket's address, or None where
    that does not balance (not Linux, a Unix socket or an inherited fd)."""
    if (
        not sys.platform.startswith("linux")
        or not hasattr(socket, "SO_REUSEPORT")
        or config.uds
        or config.fd is not None
        or len(shared) != 1
        or shared[0].family not in (socket.AF_INET, socket.AF_INET6)
    ):
        return None
    family, address = shared[0].family, shared[0].getsockname()[:2]
    shared[0].close()  # only bound, never listening: the port is free again at once
    sockets = []
    for _ in range(config.workers):
        sock = socket.socket(family=family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class GatewaySupervisor(Multiprocess):
    def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
        self.per_worker = reuseport_sockets(config, sockets)
        super().__init__(config, self.per_worker or sockets)

    def init_processes(self) -> None:
        if self.per_worker is None:
            super().init_processes()
            return
        for sock in self.per_worker:  # a replacement worker later listens on all of them
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()  # new connections are refused from now on
        logger.info("Stopped listening; letting %s workers finish", len(self.processes))
        super().terminate_all()


def main() -> None:
    # uvicorn.main.run looks the supervisor class up in its module at call time. (The module,
    # not the attribute: ``uvicorn.main`` is also the name of the command function.)
    uvicorn_main = importlib.import_module("uvicorn.main")
    uvicorn_main.Multiprocess = GatewaySupervisor  # type: ignore[attr-defined]
    if not any(arg == "--http" or arg.startswith("--http=") for arg in sys.argv[1:]):
        sys.argv[1:1] = ["--http", HTTP_PROTOCOL]
    uvicorn_main.main()


HTTP_PROTOCOL = "aigateway.core.http_protocol:GatewayHttpProtocol"


if __name__ == "__main__":
    main()
