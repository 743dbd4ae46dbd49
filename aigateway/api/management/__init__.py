"""The management API (/api/v1/…): teams, members, keys, limits, usage, routes, breakers,
audit log and personal admin tokens, with its OpenAPI document at /api/schema."""
