"""``python -m aigateway.serve``: uvicorn's command line, with a supervisor that drains cleanly.

With ``--workers N`` uvicorn's supervisor holds the listening socket until every worker has
exited. During a graceful shutdown (up to ``--timeout-graceful-shutdown`` seconds while
streams finish) the kernel keeps completing handshakes on that socket, nobody accepts them,
and the clients wait unanswered until the supervisor exits and they are reset. A load
balancer cannot tell that from a hung server.

``DrainingMultiprocess`` closes the supervisor's copy of the socket as it tells the workers
to stop; each worker closes its own copy as its shutdown starts (uvicorn does that), so new
connections are refused at once (a clean, retryable error) while the requests already
accepted finish. Every flag of ``uvicorn`` works the same (``python -m aigateway.serve
--help``).
"""

from __future__ import annotations

import importlib
import logging

from uvicorn.supervisors.multiprocess import Multiprocess

logger = logging.getLogger("uvicorn.error")


class DrainingMultiprocess(Multiprocess):
    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()  # new connections are refused from now on
        logger.info("Stopped listening; letting %s workers finish", len(self.processes))
        super().terminate_all()


def main() -> None:
    # uvicorn.main.run looks the supervisor class up in its module at call time. (The module,
    # not the attribute: ``uvicorn.main`` is also the name of the command function.)
    uvicorn_main = importlib.import_module("uvicorn.main")
    uvicorn_main.Multiprocess = DrainingMultiprocess  # type: ignore[attr-defined]
    uvicorn_main.main()


if __name__ == "__main__":
    main()
