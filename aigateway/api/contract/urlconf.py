"""What the URLconf routes, as OpenAPI path templates: the ground truth the OpenAPI document
is checked against (``/v1/models/<str:model>`` and ``^models/(?P<model>.+)$`` both become
``/v1/models/{model}``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
PROBE = "__aigateway_no_such_endpoint__"


@dataclass(frozen=True)
class RoutedPath:
    template: str
    name: str | None
    callback: Callable[..., Any]


def _regex_to_template(regex: str) -> str:
    """``^models/(?P<model>.+)$`` → ``models/{model}`` (named groups only; nesting allowed)."""
    regex = regex.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            end = regex.index(">", i)
            name = regex[i + 4 : end]
            depth, j = 1, end + 1
            while depth:
                if regex[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
            out.append("{" + name + "}")
            i = j
        else:
            out.append(regex[i].replace("\\", ""))
            i += 1
    return "".join(out)


def _piece(pattern: URLPattern | URLResolver) -> str:
    route = getattr(pattern.pattern, "_route", None)
    if route is not None:
        return _CONVERTER.sub(r"{\1}", str(route))
    return _regex_to_template(str(getattr(pattern.pattern, "_regex", "")))


def _walk(patterns: list[Any], prefix: str) -> Iterator[RoutedPath]:
    for pattern in patterns:
        here = prefix + _piece(pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, here)
        else:
            yield RoutedPath("/" + here, pattern.name, pattern.callback)


def catch_all(prefix: str) -> Callable[..., Any] | None:
    """The view answering unknown paths under ``prefix`` (e.g. ``/v1/``), if there is one."""
    try:
        return resolve(f"{prefix}{PROBE}/{PROBE}").func
    except Resolver404:
        return None


def routed_paths(prefix: str) -> list[RoutedPath]:
    """Every URL pattern under ``prefix`` except the catch-all, in URLconf order."""
    fallback = catch_all(prefix)
    return [
        routed
        for routed in _walk(get_resolver().url_patterns, "")
        if routed.template.startswith(prefix) and routed.callback is not fallback
    ]


def is_routed(template: str) -> bool:
    """Whether a concrete path for ``template`` reaches a view other than the catch-all."""
    path = re.sub(r"\{\w+\}", "x", template)
    try:
        match = resolve(path)
    except Resolver404:
        return False
    prefix = "/" + template.strip("/").split("/", 1)[0] + "/"
    return match.func is not catch_all(prefix)


def normalised(template: str) -> str:
    """Parameter names do not matter for matching: ``/v1/files/{file_id}`` → ``/v1/files/{}``."""
    return re.sub(r"\{\w+\}", "{}", template)
