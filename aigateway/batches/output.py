"""A finished batch's output and error files, in OpenAI's per-line shape.

Output file: the requests that answered 2xx. Error file: those that answered an error (in
``response``, status and error body, as OpenAI writes them) and, for a cancelled or expired
batch, every request that never ran (``error.code`` ``batch_cancelled`` / ``batch_expired``),
so each custom_id of the input appears in exactly one of the two files.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from aigateway.batches.files import file_output_create
from aigateway.batches.models import Batch, BatchItem, BatchStatus, ItemStatus

NOT_RUN: dict[str, tuple[str, str]] = {
    BatchStatus.CANCELLED: ("batch_cancelled", "The batch was cancelled before this request ran."),
    BatchStatus.EXPIRED: (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
}


@dataclass(frozen=True, slots=True)
class Outputs:
    output_file_id: str
    error_file_id: str
    completed: int
    failed: int
    usage: dict[str, Any]


def not_run_line(custom_id: str, ending: str) -> dict[str, Any]:
    code, message = NOT_RUN.get(ending, ("batch_failed", "This request did not run."))
    return {
        "id": "batch_req_" + secrets.token_hex(12),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def _jsonl(line: dict[str, Any]) -> bytes:
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def batch_outputs(batch: Batch, ending: str) -> Outputs:
    """Build and store the files (call inside the finalizing transaction)."""
    good: list[bytes] = []
    bad: list[bytes] = []
    input_tokens = output_tokens = failed = 0
    items = (
        BatchItem.objects.filter(batch_id=batch.pk)
        .order_by("line")
        .values_list("custom_id", "status", "result", "input_tokens", "output_tokens")
    )
    for custom_id, status, result, tokens_in, tokens_out in items.iterator(chunk_size=2000):
        input_tokens += tokens_in
        output_tokens += tokens_out
        if status == ItemStatus.SUCCEEDED and result is not None:
            good.append(_jsonl(result))
        elif status == ItemStatus.FAILED and result is not None:
            bad.append(_jsonl(result))
            failed += 1  # never-run requests are in the error file but are not "failed"
        else:
            bad.append(_jsonl(not_run_line(custom_id, ending)))
    output_id = error_id = ""
    if good:
        output_id = file_output_create(
            team_id=batch.team_id, filename=f"{batch.public_id}_output.jsonl",
            content=b"".join(good),
        ).public_id  # fmt: skip
    if bad:
        error_id = file_output_create(
            team_id=batch.team_id, filename=f"{batch.public_id}_error.jsonl",
            content=b"".join(bad),
        ).public_id  # fmt: skip
    return Outputs(
        output_file_id=output_id,
        error_file_id=error_id,
        completed=len(good),
        failed=failed,
        usage={
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    )
