"""The wire contract of the inference endpoints (/v1/…) as pydantic models, merged into the
OpenAPI document. The endpoints themselves are hand-written async views on the hot path;
these models describe them and are never used to parse a request there."""
