"""The audit hash chain: canonical form, hashing and verification.

record_hash = sha256(canonical JSON of the event's content, its sequence and the previous
event's record_hash). Editing an event changes its hash; deleting one leaves a sequence gap
and a previous_hash that no longer matches; deleting the newest events leaves the chain head
(``AuditChainHead``) ahead of the last event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

GENESIS_HASH = "0" * 64


class _Chained(Protocol):
    sequence: int
    previous_hash: str
    record_hash: str
    created_at: dt.datetime
    actor_id: Any
    actor_label: str
    action: str
    target_type: str
    target_id: str
    target_label: str
    details: Any
    organisation_id: int | None


def canonical_timestamp(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.isoformat()


def canonical_payload(event: _Chained) -> bytes:
    payload = {
        "sequence": int(event.sequence),
        "previous_hash": event.previous_hash,
        "created_at": canonical_timestamp(event.created_at),
        # The actor by name only: actor_id is cleared (SET_NULL) when a user is deleted, and
        # deleting a user must not look like tampering.
        "actor_label": event.actor_label,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "details": event.details,
        "organisation_id": event.organisation_id,
    }
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_hash(event: _Chained) -> str:
    return hashlib.sha256(canonical_payload(event)).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    problem: str = ""


def verify_chain(events: Iterable[_Chained], head: tuple[int, str] | None = None) -> VerifyResult:
    """Walk ``events`` (in sequence order) and report the first problem. ``head`` is the
    chain head's (sequence, record_hash), or None when no event was ever written."""
    expected_sequence = 1
    expected_previous = GENESIS_HASH
    count = 0
    for event in events:
        if event.sequence != expected_sequence:
            if event.sequence > expected_sequence:
                missing = (
                    f"sequence {expected_sequence}"
                    if event.sequence == expected_sequence + 1
                    else f"sequences {expected_sequence}-{event.sequence - 1}"
                )
                problem = f"{missing} missing (deleted?) before sequence {event.sequence}"
            else:
                problem = f"sequence {event.sequence} out of order after {expected_sequence - 1}"
            return VerifyResult(False, count, problem)
        if event.previous_hash != expected_previous:
            return VerifyResult(
                False,
                count,
                f"sequence {event.sequence}: previous_hash does not match the record_hash "
                f"of sequence {event.sequence - 1} (record deleted or chain rewritten?)",
            )
        if compute_hash(event) != event.record_hash:
            hint = ""
            return VerifyResult(
                False, count, f"sequence {event.sequence}: record_hash mismatch (edited?){hint}"
            )
        count += 1
        expected_sequence += 1
        expected_previous = event.record_hash
    last_sequence = expected_sequence - 1
    if head is None:
        if count:
            return VerifyResult(False, count, "chain head missing while records exist")
        return VerifyResult(True, 0)
    head_sequence, head_hash = head
    if head_sequence != last_sequence:
        return VerifyResult(
            False,
            count,
            f"chain head is at sequence {head_sequence} but the last record is sequence "
            f"{last_sequence} (newest records deleted?)",
        )
    if head_sequence and head_hash != expected_previous:
        return VerifyResult(
            False,
            count,
            f"sequence {last_sequence}: record_hash does not match the chain head",
        )
    return VerifyResult(True, count)
