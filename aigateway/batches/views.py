"""OpenAI-compatible /v1/files and /v1/batches. Thin: authenticate, parse, one service call,
serialize. Everything is scoped to the calling key's team (another team's ids answer 404)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from aigateway.api.door import authenticate
from aigateway.api.parsing import read_json_body
from aigateway.api.views import api_endpoint
from aigateway.batches import files as file_services
from aigateway.batches import selectors, services
from aigateway.batches.serializers import batch_to_openai, file_to_openai, page_to_openai
from aigateway.core.db import run_db
from aigateway.gateway.errors import BodyTooLarge, InvalidRequest
from aigateway.gateway.principal import Principal

CREATE_PARAMS = {
    "input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after",
}  # fmt: skip
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and the purpose field around the file


async def _principal(request: HttpRequest) -> Principal:
    return await authenticate(request)


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRequest(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return int(raw)


def _read_upload(request: HttpRequest) -> tuple[str, str, bytes]:
    """(purpose, filename, content) of a multipart upload, checked for size first."""
    limit = settings.AIGATEWAY_BATCH_FILE_MAX_BYTES
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:
        raise BodyTooLarge(f"Files may be at most {limit} bytes.", param="file")
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise InvalidRequest("Upload the file as multipart/form-data with 'file' and 'purpose'.")
    try:
        upload = request.FILES.get("file")
        purpose = request.POST.get("purpose", "")
    except (MultiPartParserError, TooManyFieldsSent) as exc:
        raise InvalidRequest("The multipart body could not be parsed.") from exc
    except RequestDataTooBig as exc:
        raise BodyTooLarge("The form fields are too large.") from exc
    if upload is None:
        raise InvalidRequest("'file' is required.", param="file")
    if not purpose:
        raise InvalidRequest("'purpose' is required.", param="purpose")
    if upload.size is not None and upload.size > limit:
        raise BodyTooLarge(f"Files may be at most {limit} bytes.", param="file")
    return purpose, upload.name or "", upload.read()


def _upload_body_limit() -> int:
    return int(settings.AIGATEWAY_BATCH_FILE_MAX_BYTES) + MULTIPART_OVERHEAD


@api_endpoint("POST", "GET", max_body=_upload_body_limit)
async def files(request: HttpRequest, request_id: str) -> HttpResponse:
    principal = await _principal(request)
    if request.method == "POST":
        purpose, filename, content = await sync_to_async(_read_upload)(request)
        created = await run_db(
            file_services.file_create, team_id=principal.team_id, filename=filename,
            content=content, purpose=purpose,
        )  # fmt: skip
        return JsonResponse(file_to_openai(created))
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    page = await run_db(
        file_services.files_list, team_id=principal.team_id,
        purpose=request.GET.get("purpose") or None,
        limit=_int_param(request, "limit", 10_000, 1, 10_000),
        after=request.GET.get("after") or None, descending=order == "desc",
    )  # fmt: skip
    data = [file_to_openai(f) for f in page.items]
    return JsonResponse(page_to_openai(data, page.has_more))


@api_endpoint("GET", "DELETE")
async def file_detail(request: HttpRequest, request_id: str, file_id: str) -> HttpResponse:
    principal = await _principal(request)
    if request.method == "DELETE":
        await run_db(file_services.file_delete, team_id=principal.team_id, file_id=file_id)
        return JsonResponse({"id": file_id, "object": "file", "deleted": True})
    found = await run_db(
        file_services.file_get_for_team, team_id=principal.team_id, file_id=file_id
    )
    return JsonResponse(file_to_openai(found))


@api_endpoint("GET")
async def file_content(request: HttpRequest, request_id: str, file_id: str) -> HttpResponse:
    principal = await _principal(request)
    found, content = await run_db(
        file_services.file_content_for_team, team_id=principal.team_id, file_id=file_id
    )
    response = HttpResponse(content, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    return response


async def _batch_response(batch_id: str, principal: Principal) -> JsonResponse:
    def read() -> dict[str, Any]:
        batch = selectors.batch_get_for_team(team_id=principal.team_id, batch_id=batch_id)
        return batch_to_openai(batch, selectors.request_counts([batch])[batch.pk])

    return JsonResponse(await run_db(read))


@api_endpoint("POST", "GET")
async def batches(request: HttpRequest, request_id: str) -> HttpResponse:
    principal = await _principal(request)
    if request.method == "GET":
        limit = _int_param(request, "limit", 20, 1, 100)
        after = request.GET.get("after") or None

        def read() -> dict[str, Any]:
            page = selectors.batches_list(team_id=principal.team_id, limit=limit, after=after)
            counts = selectors.request_counts(page.items)
            data = [batch_to_openai(b, counts[b.pk]) for b in page.items]
            return page_to_openai(data, page.has_more)

        return JsonResponse(await run_db(read))
    body = read_json_body(request)
    unknown = sorted(set(body) - CREATE_PARAMS)
    if unknown:
        raise InvalidRequest(
            f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0]
        )
    created = await run_db(
        services.batch_create, principal=principal, input_file_id=body.get("input_file_id"),
        endpoint=body.get("endpoint"), completion_window=body.get("completion_window"),
        metadata=body.get("metadata"),
    )  # fmt: skip
    # Queues the batch (a broker, or no broker: this process's batches thread); only with
    # AIGATEWAY_BATCH_EAGER_BACKGROUND off (the tests) does eager Celery run it here.
    await run_db(services.batch_enqueue, batch_id=created.pk)
    return await _batch_response(created.public_id, principal)


@api_endpoint("GET")
async def batch_detail(request: HttpRequest, request_id: str, batch_id: str) -> HttpResponse:
    return await _batch_response(batch_id, await _principal(request))


@api_endpoint("POST")
async def batch_cancel(request: HttpRequest, request_id: str, batch_id: str) -> HttpResponse:
    principal = await _principal(request)
    await run_db(services.batch_cancel, team_id=principal.team_id, batch_id=batch_id)
    return await _batch_response(batch_id, principal)
