"""Files: upload, look up, list, read and delete a team's files (synchronous, ORM).

Every lookup is scoped to the caller's team; another team's file is "not found" (404), never
"forbidden", so file ids reveal nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from aigateway.batches.errors import NotFound
from aigateway.batches.models import BatchFile, FilePurpose
from aigateway.gateway.errors import BodyTooLarge, InvalidRequest

UPLOAD_PURPOSES = (FilePurpose.BATCH,)
MAX_FILENAME = 255


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    has_more: bool


def _safe_filename(name: str) -> str:
    """The name as given, minus what could break a Content-Disposition header later."""
    kept = "".join(c for c in name.rsplit("/", 1)[-1] if c.isprintable() and c not in '"\\')
    return kept.strip()[:MAX_FILENAME] or "upload.jsonl"


def file_create(*, team_id: int, filename: str, content: bytes, purpose: str) -> BatchFile:
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"'{purpose}' is not a supported purpose; this gateway accepts 'batch' files.",
            param="purpose",
        )
    limit = settings.AIGATEWAY_BATCH_FILE_MAX_BYTES
    if len(content) > limit:
        raise BodyTooLarge(
            f"The file is {len(content)} bytes; files may be at most {limit} bytes.",
            param="file",
        )
    return BatchFile.objects.create(
        team_id=team_id,
        purpose=purpose,
        filename=_safe_filename(filename),
        size=len(content),
        content=content,
    )


def file_output_create(*, team_id: int, filename: str, content: bytes) -> BatchFile:
    """A batch's output or error file (no size limit: the gateway wrote it)."""
    return BatchFile.objects.create(
        team_id=team_id,
        purpose=FilePurpose.BATCH_OUTPUT,
        filename=filename,
        size=len(content),
        content=content,
    )


def file_get_for_team(*, team_id: int, file_id: str) -> BatchFile:
    """The file's metadata (content deferred), or 404."""
    found = BatchFile.objects.defer("content").filter(team_id=team_id, public_id=file_id).first()
    if found is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    return found


def file_content_for_team(*, team_id: int, file_id: str) -> tuple[BatchFile, bytes]:
    found = BatchFile.objects.filter(team_id=team_id, public_id=file_id).first()
    if found is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    return found, bytes(found.content)


def file_delete(*, team_id: int, file_id: str) -> None:
    deleted, _ = BatchFile.objects.filter(team_id=team_id, public_id=file_id).delete()
    if not deleted:
        raise NotFound(f"No such File object: {file_id}", param="file_id")


def files_list(
    *, team_id: int, purpose: str | None, limit: int, after: str | None, descending: bool
) -> Page[BatchFile]:
    files = BatchFile.objects.defer("content").filter(team_id=team_id)
    if purpose:
        files = files.filter(purpose=purpose)
    if after:
        cursor = BatchFile.objects.filter(team_id=team_id, public_id=after).first()
        if cursor is None:
            raise NotFound(f"No such File object: {after}", param="after")
        files = files.filter(pk__lt=cursor.pk) if descending else files.filter(pk__gt=cursor.pk)
    rows = list(files.order_by("-pk" if descending else "pk")[: limit + 1])
    return Page(items=rows[:limit], has_more=len(rows) > limit)
