"""`wire.frame` (the pipe's answer frames) and `wire.dumps` (HTTP's bodies) give exactly the
bytes of the general encoder."""

import json

from hypothesis import given
from hypothesis import strategies as st

from beep_backend import wire

finite = st.floats(allow_nan=False, allow_infinity=False)  # the server sends others as handles
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), finite)
values = st.recursive(
    scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8
)
ids = st.one_of(st.none(), st.integers(), st.text(), st.floats(), st.booleans(), st.lists(st.integers()))


def encoded(obj):
    """The general encoder's bytes (`wire.dumps`'s answer where it refuses a value)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError, RecursionError):
        return wire.dumps(obj)


def expected(rid, body):
    answer = {"id": rid if type(rid) in (int, str) else None}
    answer.update(body)
    data = encoded(answer)
    return len(data).to_bytes(4, "big") + data


@given(rid=ids, value=values)
def test_frame_of_a_value_is_the_encoders_bytes(rid, value):
    frame = wire.frame(rid, {"value": value})
    assert frame == expected(rid, {"value": value})
    assert json.loads(frame[4:])["value"] == value


@given(rid=ids, value=values, out=st.text())
def test_frame_of_other_bodies(rid, value, out):
    for body in (
        {"stdout": out, "stderr": "", "value": value},
        wire.error("BadRequest", out),
        {"value": value, "extra": 1},
    ):
        assert wire.frame(rid, body) == expected(rid, body)


def test_frame_examples():
    assert wire.frame(1, {"value": 2}) == b'\x00\x00\x00\x12{"id":1,"value":2}'
    assert wire.frame("\u00e9", {"value": 'a"\n\u2603'}) == expected("\u00e9", {"value": 'a"\n\u2603'})
    assert wire.frame(True, {"value": False})[4:] == b'{"id":null,"value":false}'
    assert wire.frame(None, {"value": None})[4:] == b'{"id":null,"value":null}'
    # An int too long for str(): the encoder's InternalError, as before.
    assert b"InternalError" in wire.frame(3, {"value": 10**5000})
    assert wire.frame(3, {"value": float("inf")}) == expected(3, {"value": float("inf")})


@given(rid=ids, value=values, seq=st.integers(min_value=1, max_value=2**40))
def test_frame_of_a_live_call_answer_is_the_encoders_bytes(rid, value, seq):
    body = {"value": value, "call": "c-1.x:y_Z", "seq": seq}
    assert wire.frame(rid, body) == expected(rid, body)


# Three fields, not a plain call's answer with an int value: the templates are not for them.
NOT_PLAIN = (
    {"value": 1, "a": 2, "b": 3},
    {"value": 1, "seq": 1, "x": "c1"},
    {"value": 2, "call": 5, "seq": 1},
    {"value": 2, "call": "c5", "seq": 7},
    {"value": 2, "call": "c\u00e95", "seq": 1},
    {"value": True, "call": "c5", "seq": 1},
    {"value": 2.0, "call": "c5", "seq": 1},
    {"error": {"type": "E", "message": "m", "traceback": ""}, "call": "c1", "seq": 1},
)


def test_frame_of_three_fields_that_are_not_a_call_answer():
    """The plain call's template (`{"value", "call", "seq"}`) is only for such answers."""
    for body in NOT_PLAIN:
        for rid in (1, "r", None):
            assert wire.frame(rid, body) == expected(rid, body)


call_ids = st.text(alphabet="ABCXYZabcxyz0189._:-", min_size=1, max_size=40)


@given(value=values | st.integers(), cid=call_ids, seq=st.integers(min_value=0, max_value=3))
def test_dumps_of_a_call_answer_is_the_encoders_bytes(value, cid, seq):
    body = {"value": value, "call": cid, "seq": seq}
    assert wire.dumps(body) == encoded(body)
    assert json.loads(wire.dumps(body)) == body


def test_dumps_of_three_fields_that_are_not_a_plain_call_answer():
    for body in NOT_PLAIN:
        assert wire.dumps(body) == encoded(body)
    assert wire.dumps({"value": 7, "call": "c12", "seq": 1}) == b'{"value":7,"call":"c12","seq":1}'
    # An int too long for str(): the encoder's InternalError, as for any other body.
    assert b"InternalError" in wire.dumps({"value": 10**5000, "call": "c1", "seq": 1})
