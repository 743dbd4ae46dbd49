"""providers/fastjson.py and the request body parser's fast path: orjson's speed, the
standard library's results."""

from __future__ import annotations

import json
import math

import pytest

from aigateway.api.parsing import parse_json_object
from aigateway.gateway.errors import InvalidRequest
from providers import fastjson

SAME_AS_JSON = [
    b'{"a": 1, "b": [1.5, -0.0, null, true], "c": "\\u00fc\\ud83d\\ude00"}',
    b'{"seed": 123456789012345678901234567890}',  # orjson alone: a float
    b'{"n": -9223372036854775809}',
    b"[1e-7, 2.5e300]",
    b'{"a": 1, "a": 2}',
]


@pytest.mark.parametrize("raw", SAME_AS_JSON)
def test_loads_gives_what_json_gives(raw):
    got = fastjson.loads(raw)
    assert got == json.loads(raw) and repr(got) == repr(json.loads(raw))


def test_what_orjson_refuses_is_left_to_json():
    assert fastjson.loads(b"\xef\xbb\xbf{}") == {}  # json.loads(bytes) skips a BOM
    assert math.isnan(fastjson.loads(b"[NaN]")[0])  # json's leniency, as before
    assert fastjson.loads('"\ud800"') == "\ud800"  # a str with a lone surrogate
    with pytest.raises(json.JSONDecodeError):
        fastjson.loads(b"{not json")


def test_dumps_writes_nan_as_null_and_refuses_what_json_cannot_hold():
    assert fastjson.dumps({"x": math.nan, "u": "ü"}) == '{"x":null,"u":"ü"}'.encode()
    with pytest.raises(TypeError):
        fastjson.dumps({"o": object()})


def test_a_request_body_keeps_a_long_integer_exact_and_refuses_what_it_refused():
    assert parse_json_object(b'{"seed": 123456789012345678901234567890}', "The JSON body") == {
        "seed": 123456789012345678901234567890
    }
    assert parse_json_object(b'\xef\xbb\xbf{"a": 1}', "The JSON body") == {"a": 1}  # BOM
    for bad in (b'{"a": NaN}', b'{"a": "\\ud800"}', b"\xff\xfe{}", b"[1]", b"{"):
        with pytest.raises(InvalidRequest):
            parse_json_object(bad, "The JSON body")
