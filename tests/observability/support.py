"""Helpers for the observability tests: request log lines, /metrics samples."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from aigateway.observability.logging import JsonFormatter


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(self.format(record))


class RequestLog:
    """The JSON request lines written while it is active (any thread: the live gateway)."""

    def __init__(self, handler: _Lines) -> None:
        self._handler = handler

    @property
    def raw(self) -> list[str]:
        return list(self._handler.raw)

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._handler.raw]  # every line must parse

    def one(self, request_id: str) -> dict[str, Any]:
        [line] = [line for line in self.lines if line["request_id"] == request_id]
        return line


@contextmanager
def request_log() -> Iterator[RequestLog]:
    handler = _Lines()
    logger = logging.getLogger("aigateway.requests")
    logger.addHandler(handler)
    try:
        yield RequestLog(handler)
    finally:
        logger.removeHandler(handler)


class Metrics:
    """One scrape of /metrics, parsed with prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        families = text_string_to_metric_families(text)
        self.samples = [sample for family in families for sample in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def scrape(base_url: str) -> Metrics:
    response = requests.get(base_url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return Metrics(response.text)
