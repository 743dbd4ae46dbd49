"""Guardrails: detection (detectors, injection heuristics, stream scanning) and policy
(per organisation, team and route; applied by the one pipeline). docs/guardrails.md."""
