"""The audit hash chain: canonical form, hashing and verification.

record_hash = sha256(canonical JSON of the event's content, its sequence and the previous
event's record_hash). Editing an event changes its hash; deleting one leaves a sequence gap
and a previous_hash that no longer matches; deleting the newest events leaves the chain head
(``AuditChainHead``) ahead of the last event.

Retention (``aigateway.audit.retention``) removes old events on purpose. Each run of removed
events leaves a gap row holding the hashes that linked it into the chain, and the newest
retention-purge event carries a digest of all gap rows: a gap that no purge recorded (one
added or widened to hide a deletion) is reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
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


class _Gap(Protocol):
    first_sequence: int
    last_sequence: int
    previous_hash: str
    last_hash: str


def gaps_digest(gaps: Iterable[_Gap]) -> str:
    """SHA-256 over every gap row (sorted): what a retention-purge event anchors."""
    rows = sorted([g.first_sequence, g.last_sequence, g.previous_hash, g.last_hash] for g in gaps)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    problem: str = ""
    purged: int = 0  # events removed by retention (inside verified gaps)


class _Walk:
    """The expected next link while walking the chain, stepping over retention gaps."""

    def __init__(self, gaps: Sequence[_Gap]) -> None:
        self.sequence = 1
        self.previous = GENESIS_HASH
        self.count = 0
        self.purged = 0
        self.gaps = sorted(gaps, key=lambda g: g.first_sequence)
        self.next_gap = 0

    def step_over_gaps(self) -> str:
        while self.next_gap < len(self.gaps):
            gap = self.gaps[self.next_gap]
            if gap.first_sequence > self.sequence:
                return ""
            span = f"retention gap {gap.first_sequence}-{gap.last_sequence}"
            if gap.first_sequence < self.sequence or gap.last_sequence < gap.first_sequence:
                return f"{span} overlaps records that exist (gap edited?)"
            if gap.previous_hash != self.previous:
                return f"{span} does not continue from sequence {self.sequence - 1}"
            self.purged += gap.last_sequence - gap.first_sequence + 1
            self.sequence, self.previous = gap.last_sequence + 1, gap.last_hash
            self.next_gap += 1
        return ""


def verify_chain(
    events: Iterable[_Chained],
    head: tuple[int, str] | None = None,
    gaps: Sequence[_Gap] = (),
    gaps_anchor: str | None = None,
) -> VerifyResult:
    """Walk ``events`` (in sequence order) and report the first problem. ``head`` is the
    chain head's (sequence, record_hash), or None when no event was ever written. ``gaps``
    are the retention gaps; ``gaps_anchor`` the digest the newest purge event recorded."""
    walk = _Walk(gaps)

    def fail(problem: str) -> VerifyResult:
        return VerifyResult(False, walk.count, problem, walk.purged)

    for event in events:
        if problem := walk.step_over_gaps():
            return fail(problem)
        if event.sequence != walk.sequence:
            if event.sequence > walk.sequence:
                missing = (
                    f"sequence {walk.sequence}"
                    if event.sequence == walk.sequence + 1
                    else f"sequences {walk.sequence}-{event.sequence - 1}"
                )
                return fail(f"{missing} missing (deleted?) before sequence {event.sequence}")
            return fail(f"sequence {event.sequence} out of order after {walk.sequence - 1}")
        if event.previous_hash != walk.previous:
            return fail(
                f"sequence {event.sequence}: previous_hash does not match the record_hash "
                f"of sequence {event.sequence - 1} (record deleted or chain rewritten?)"
            )
        if compute_hash(event) != event.record_hash:
            return fail(f"sequence {event.sequence}: record_hash mismatch (edited?)")
        walk.count += 1
        walk.sequence += 1
        walk.previous = event.record_hash
    if problem := walk.step_over_gaps():
        return fail(problem)
    if walk.next_gap < len(walk.gaps):
        gap = walk.gaps[walk.next_gap]
        return fail(f"retention gap {gap.first_sequence}-{gap.last_sequence} lies past the chain")
    if gaps and gaps_digest(gaps) != gaps_anchor:
        return fail(
            "retention gaps do not match the digest in the newest retention purge record "
            "(gap added or edited to hide a deletion?)"
        )
    last_sequence = walk.sequence - 1
    if head is None:
        if last_sequence:
            return fail("chain head missing while records exist")
        return VerifyResult(True, 0)
    head_sequence, head_hash = head
    if head_sequence != last_sequence:
        return fail(
            f"chain head is at sequence {head_sequence} but the last record is sequence "
            f"{last_sequence} (newest records deleted?)"
        )
    if head_sequence and head_hash != walk.previous:
        return fail(f"sequence {last_sequence}: record_hash does not match the chain head")
    return VerifyResult(True, walk.count, purged=walk.purged)
