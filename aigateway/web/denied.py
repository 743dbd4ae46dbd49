"""PermissionDenied from a page's service or selector → a 403 page that says why."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


def denied_as_page(
    *, nav: str, back_to: str, back_label: str
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Wrap a view: a PermissionDenied it raises becomes the shared 403 page, with the reason
    in a sentence and a link back (``back_to``: a URL name)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except PermissionDenied as exc:
                context = {
                    "nav": nav,
                    "reason": str(exc) or "You may not do this.",
                    "back_url": reverse(back_to),
                    "back_label": back_label,
                }
                return render(request, "web/denied.html", context, status=403)

        return wrapper

    return decorate
