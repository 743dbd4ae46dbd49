"""Scan a streamed answer chunk by chunk: catch matches split across chunks, never let a
character of a match out before it is redacted, and hold back as little as possible.

    scanner = StreamScanner(detectors, replace=lambda f, text: f"[{f.detector}]")
    for chunk in upstream:
        step = scanner.feed(chunk)   # step.emit goes to the client now
    step = scanner.finish()          # what was still held back

The holdback rule. After each chunk the scanner looks at the text it has not emitted yet
(plus a little already-emitted context for lookbehinds) and asks every detector for its
matches and for the earliest position where a match may still be forming: a partial match
that runs into the end of the text (the ``regex`` module's partial matching: "sk-pr" may
become a key, "jane.doe" an address, "4111 11" a card number), or a complete match that
ends within END_MARGIN characters of the end (a card number may gain a digit). Everything
before that position, and outside any match, leaves now; the rest waits for more text. In
ordinary prose that is the last word or two; after "-----BEGIN … PRIVATE KEY-----" it is the
whole key block, until its END line.

The cap. At most ``max_holdback`` characters wait. A possible match longer than that (a
private key over 4 KB, a custom pattern like ``secret.*``) is redacted as it stands and the
scanner keeps swallowing text while that match goes on; the client sees one replacement,
the policy one finding reported early. Only in that case can the output differ from
scanning the whole text at once, and it holds no character of the match, up to the
detector's ``max_match_len`` (a private key: 100 KB) or the cap if that is larger.

Findings carry offsets into the whole stream's text (what was fed, not what was emitted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aigateway.guardrails.patterns import (
    DEFAULT_PRIORITY,
    END_MARGIN,
    Detector,
    Finding,
    Hit,
    PatternDetector,
    redact,
    resolve,
)

CONTEXT = 64  # emitted characters kept for lookbehinds (\b, "not after a digit", …)


def _shift(hit: Hit, offset: int) -> Hit:
    f = hit.finding
    return Hit(
        Finding(f.detector, f.category, f.start + offset, f.end + offset),
        hit.match_start + offset,
        hit.match_end + offset,
    )


@dataclass(slots=True)
class StreamStep:
    emit: str  # text that may leave now (already redacted when redaction is on)
    findings: list[Finding] = field(default_factory=list)  # completed in this step


class _Foreign:
    """A detector that is not a PatternDetector: it can only be asked for findings, so a
    match may start anywhere in its last ``max_match_len`` characters."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.name = detector.name
        self.category = detector.category
        self.max_match_len = detector.max_match_len
        self.priority = DEFAULT_PRIORITY

    def hits(
        self, text: str, pos: int = 0, *, partial: bool = False
    ) -> tuple[list[Hit], int | None]:
        found = [Hit(f, f.start, f.end) for f in self.detector.find(text) if f.start >= pos]
        if not partial:
            return found, None
        horizon = max(pos, len(text) - self.max_match_len - END_MARGIN)
        live = min([horizon] + [h.match_start for h in found if h.match_end > horizon])
        return [h for h in found if h.match_end <= live], live if live < len(text) else None


class StreamScanner:
    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        replace: Callable[[Finding, str], str] | None = None,
        max_holdback: int = 4096,
    ) -> None:
        if max_holdback < 1:
            raise ValueError("max_holdback must be at least 1")
        self._detectors: list[Any] = [
            d if isinstance(d, PatternDetector) else _Foreign(d) for d in detectors
        ]
        self._by_name = {d.name: d for d in self._detectors}
        self._ranks = {d.name: d.priority for d in self._detectors}
        self._replace = replace
        self._cap = max_holdback
        self._raw = ""  # text fed and not yet dropped, from stream offset _base on
        self._base = 0
        self._emitted = 0  # stream offset up to which text has left (or been swallowed)
        self._forced: int | None = None  # start of a region redacted at the cap
        self._reported: set[tuple[str, int]] = set()  # findings in it already reported
        # Per detector: where its next search starts (its earliest live position: all
        # before it is decided) and the final matches it found that have not left yet, in
        # stream offsets. A long held text (a private key block) is not searched again
        # by every detector on every chunk.
        self._resume = [0] * len(self._detectors)
        self._found: list[list[Hit]] = [[] for _ in self._detectors]

    @property
    def held(self) -> int:
        """Characters fed but not emitted yet."""
        return self._base + len(self._raw) - self._emitted

    def feed(self, text: str) -> StreamStep:
        self._raw += text
        return self._step(final=False)

    def finish(self) -> StreamStep:
        """End of stream: everything held back is scanned as final text and emitted."""
        return self._step(final=True)

    def _step(self, final: bool) -> StreamStep:
        step = StreamStep("")
        if self._forced is not None:
            self._swallow(final, step)
        if self._forced is None and self._detectors:
            self._scan(final, step)
        elif not self._detectors:
            step.emit = self._raw[self._emitted - self._base :]
            self._emitted = self._base + len(self._raw)
        self._trim()
        return step

    def _search(self, start: int, final: bool) -> tuple[list[Hit], int, Any]:
        """Every detector's final matches from stream offset ``start`` on (stream offsets),
        and the earliest position where a match may still be forming, with its detector."""
        window, base = self._raw, self._base
        end = base + len(window)
        hits: list[Hit] = []
        cut, owner = end, None
        for index, detector in enumerate(self._detectors):
            resume = max(self._resume[index], start)
            found, live = detector.hits(window, resume - base, partial=not final)
            kept = [h for h in self._found[index] if h.match_start >= start]
            kept += [_shift(h, base) for h in found]
            self._found[index] = kept
            self._resume[index] = end if live is None else base + live
            hits += kept
            if live is not None and base + live < cut:
                cut, owner = base + live, detector
        return hits, cut, owner

    def _scan(self, final: bool, step: StreamStep) -> None:
        start, end = self._emitted, self._base + len(self._raw)
        hits, cut, owner = self._search(start, final)
        # Never cut through a match: its text leaves whole (redacted) or not at all.
        moved = True
        while moved:
            moved = False
            for hit in hits:
                if hit.match_start < cut < hit.match_end:
                    cut, owner, moved = hit.match_start, self._by_name[hit.finding.detector], True
        done = resolve((h.finding for h in hits if h.match_end <= cut), self._ranks)
        text = self._raw[start - self._base : cut - self._base]
        step.emit += redact(text, done, self._replace, offset=start) if self._replace else text
        step.findings += done
        self._emitted = cut
        if owner is not None and end - cut > self._cap:
            # Too long to hold: out it goes now, redacted, and the match is followed on.
            forced = Finding(owner.name, owner.category, cut, end)
            step.findings.append(forced)
            held = self._raw[cut - self._base :]
            if self._replace is None:
                step.emit += held
            else:
                step.emit += self._replace(forced, held)
                self._forced, self._reported = cut, set()
            self._emitted = end

    def _swallow(self, final: bool, step: StreamStep) -> None:
        """After a region went out redacted at the cap, every match that started in it is
        swallowed to its end (its replacement is out already; it is reported when found):
        a private key goes on to its END line, a card number cut by the cap to its last
        digit. While such a match may still be growing the text after the region waits
        (up to the cap). Then normal scanning resumes after the last of them."""
        assert self._forced is not None
        inside, end = self._emitted, self._base + len(self._raw)
        hits, _, _ = self._search(self._forced, final)
        reach, waiting = inside, False
        for hit in hits:
            if hit.match_start < inside:
                reach = max(reach, hit.match_end)
                key = (hit.finding.detector, hit.finding.start)
                if key not in self._reported:
                    self._reported.add(key)
                    step.findings.append(hit.finding)
        for index, detector in enumerate(self._detectors):
            # A match longer than its detector says it can be (a custom pattern) is let go
            # at some point: what remains of it is then scanned like any text.
            live = self._resume[index]
            longest = max(detector.max_match_len, self._cap) + END_MARGIN
            if live < min(inside, end) and end - live <= longest:
                waiting = True
        if waiting and end - reach > self._cap:
            reach = end  # still growing, and too long to wait for
        self._emitted = reach
        if not waiting:
            self._forced = None

    def _trim(self) -> None:
        keep = self._emitted if self._forced is None else min(self._emitted, self._forced)
        keep = max(self._base, keep - CONTEXT)
        if keep > self._base:
            self._raw = self._raw[keep - self._base :]
            self._base = keep
