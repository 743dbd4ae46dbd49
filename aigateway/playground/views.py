"""The playground pages and its streaming endpoint. Thin: check, call the pipeline, render.

The stream endpoint is the browser's door to the one pipeline: the principal is the signed-in
user acting for one of their teams (auth principal_for_team_member), so the team's routes,
limits, guardrails and cache scope apply, and usage and audit name the user and the team.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from aigateway.api.door import StreamBody
from aigateway.audit.search import audit_can_read
from aigateway.core.config_cache import ConfigUnavailable
from aigateway.core.db import run_db
from aigateway.core.ids import unique_hex
from aigateway.gateway.errors import GatewayError
from aigateway.gateway.pipeline import CallContext, chat_stream
from aigateway.gateway.principal import principal_for_team_member
from aigateway.playground.errors import INTERNAL_ERROR, error_sentence
from aigateway.playground.inputs import PlaygroundInputError, parse_playground_input
from aigateway.playground.models import PlaygroundRun
from aigateway.playground.selectors import (
    playground_run_get_for_user,
    playground_runs_for_user,
    playground_team_runs_for_admin,
    playground_teams_for_user,
)
from aigateway.playground.stream import PlaygroundRunStream

logger = logging.getLogger(__name__)


def _run_payload(run: PlaygroundRun, *, autorun: bool = False) -> dict[str, Any]:
    """A stored run as the page's script loads it (the owner's view only)."""
    messages = list(run.messages)
    system = messages.pop(0)["content"] if messages and messages[0]["role"] == "system" else ""
    return {
        "id": run.pk,
        "team": run.team_id,
        "route": run.route,
        "system": system,
        "messages": messages,
        "temperature": run.params.get("temperature"),
        "max_tokens": run.params.get("max_tokens"),
        "answer": run.answer,
        "meta": run.meta,
        "autorun": autorun,
    }


@login_required
@require_GET
def playground_page(request: HttpRequest) -> HttpResponse:
    teams = playground_teams_for_user(user=request.user)
    initial = None
    run_id = request.GET.get("run", "")
    if run_id:
        if not run_id.isdigit():
            raise Http404("No such run.")
        run = playground_run_get_for_user(user=request.user, run_id=int(run_id))
        initial = _run_payload(run, autorun=request.GET.get("autorun") == "1")
    context = {
        "nav": "playground",
        "teams": teams,
        "teams_data": [{"id": t.id, "label": t.label, "routes": list(t.routes)} for t in teams],
        "initial": initial,
        "stream_url": reverse("playground:stream"),
    }
    return render(request, "playground/page.html", context)


@login_required
@require_GET
def history_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:200]
    context = {
        "nav": "playground",
        "query": query,
        "runs": playground_runs_for_user(user=request.user, query=query),
        "team_runs": playground_team_runs_for_admin(user=request.user),
    }
    return render(request, "playground/history.html", context)


@login_required
@require_GET
def run_detail(request: HttpRequest, pk: int) -> JsonResponse:
    """One of the user's own runs as JSON (404 for anyone else's)."""
    run = playground_run_get_for_user(user=request.user, run_id=pk)
    return JsonResponse(_run_payload(run))


def _refusal(status: int, message: str, *, request_id: str = "", code: str = "") -> JsonResponse:
    error = {"message": message, "code": code or None, "request_id": request_id or None}
    return JsonResponse({"error": error}, status=status)


async def playground_stream(request: HttpRequest) -> HttpResponseBase:
    """POST a conversation; the answer streams back as server-sent events (stream.py)."""
    if request.method != "POST":
        return _refusal(405, "Send the conversation with POST.")
    user = await request.auser()
    if not user.is_authenticated:
        return _refusal(401, "Your session has ended: sign in again.")
    request_id = "req_" + unique_hex()
    try:
        data = parse_playground_input(request.body)
    except PlaygroundInputError as exc:
        return _refusal(400, str(exc))
    except RequestDataTooBig:
        return _refusal(413, "The conversation is too large to send.")
    principal = await run_db(principal_for_team_member, user.pk, data.team_id)
    if principal is None:
        return _refusal(403, "You are not a member of this team.")
    if data.route not in principal.allowed_routes:
        return _refusal(403, f"Your team may not use the route '{data.route}'.")
    show_audit_link = await run_db(audit_can_read, user)
    ctx = CallContext(
        request_id=request_id,
        principal=principal,
        source="playground",
        client_ip=request.META.get("REMOTE_ADDR", ""),
    )
    chat_request = data.chat_request()
    try:
        opened = await chat_stream(ctx, chat_request)
    except GatewayError as exc:
        sentence = error_sentence(exc, route=data.route)
        refusal = _refusal(exc.status_code, sentence, request_id=request_id, code=exc.code or "")
        if "Retry-After" in exc.headers:
            refusal["Retry-After"] = exc.headers["Retry-After"]
        return refusal
    except ConfigUnavailable:
        return _refusal(503, "The gateway cannot read its configuration right now; retry shortly.")
    except Exception:
        logger.exception("playground call failed (request %s)", request_id)
        return _refusal(500, INTERNAL_ERROR, request_id=request_id)
    run = PlaygroundRunStream(
        ctx=ctx, opened=opened, data=data, request=chat_request, user_id=user.pk,
        show_audit_link=show_audit_link,
    )  # fmt: skip
    response = StreamingHttpResponse(
        StreamBody(run.events(), opened.abandon), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx must not buffer a token stream
    response["x-request-id"] = request_id
    return response
