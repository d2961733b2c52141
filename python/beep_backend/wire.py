"""JSON in and out, shared by the HTTP and pipe transports.

The json module's C scanner and C encoder are called directly: `json.loads` and
`JSONEncoder.encode` add ~10 us of Python-level work per call on top of them. The pipe's
answers with a scalar value (`{"id": 1, "value": 2}`, the common case) are formatted
directly (`frame`), a quarter of the encoder's cost.
"""

import json
import json.decoder
import json.encoder
import struct

scan = json.decoder.JSONDecoder().scan_once  # the C scanner when available
_c_make_encoder = json.encoder.c_make_encoder
if _c_make_encoder is not None:
    _iterencode = _c_make_encoder(
        None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )

    def _encode(body):
        return "".join(_iterencode(body, 0))
else:  # pragma: no cover - interpreters without the C accelerator
    _encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

_WS = " \t\n\r"
_escape = json.encoder.encode_basestring_ascii  # C when available: '"text"', ASCII only


def dumps(body):
    """`body` as compact ASCII JSON bytes; never raises for the bodies this package builds.

    A plain call's answer with an int value (`{"value": 2, "call": "c9", "seq": 1}`, the
    common one; call ids are plain ASCII, see `live.py`) is formatted directly, byte for byte
    what the encoder gives, at a third of its cost."""
    if len(body) == 3 and body.get("seq") == 1:
        value = body.get("value")
        if type(value) is int:
            try:
                return PLAIN_INT_BODY % (value, body["call"].encode("ascii"))
            except (ValueError, KeyError, AttributeError):  # an int over the str limit (the
                pass  # encoder says so), or 3 fields that are not a call's answer
    try:
        return _encode(body).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:  # values are checked before; be safe
        return json.dumps(error("InternalError", "could not encode the answer: %s" % exc)).encode()


def frame(rid, body):
    """The pipe frame (4-byte big-endian length + JSON) of `{"id": rid, **body}`.

    `rid` is echoed if it is an int or a str, else null. Byte for byte what `dumps` gives for
    the same object; a `{"value": <int, str, bool or None>}` body, also with the `call` and
    `seq` of a live call after it (call ids are plain ASCII, see `live.py`), skips the general
    encoder.
    """
    if type(rid) is int and len(body) == 3:  # a plain call's answer first: the common one
        value = body.get("value")
        if type(value) is int and body.get("seq") == 1:  # {"value": 2, "call": "c9", "seq": 1}
            try:
                data = PLAIN_INT % (rid, value, body["call"].encode("ascii"))
            except (ValueError, KeyError, AttributeError):  # an int over the str limit (`dumps`
                pass  # says so), or 3 fields that are not a call's answer
            else:
                return _pack_size(len(data)) + data
    t = type(rid)
    n = len(body)
    if t is int and (n == 3 or n == 1):  # the other common answers (3: with `call` and `seq`)
        value = body.get("value")
        if type(value) is int:
            try:
                if n == 1:
                    data = b'{"id":%d,"value":%d}' % (rid, value)
                else:
                    data = b'{"id":%d,"value":%d,"call":"%s","seq":%d}' % (
                        rid,
                        value,
                        body["call"].encode("ascii"),
                        body["seq"],
                    )
            except (ValueError, KeyError, AttributeError, TypeError):
                pass
            else:
                return _pack_size(len(data)) + data
    if t is not int and t is not str:
        rid = None
    tail = None
    if n == 1 and "value" in body:
        tail = b""
    elif n == 3 and "value" in body and "seq" in body and type(body.get("call")) is str:
        try:
            tail = b',"call":"%s","seq":%d' % (body["call"].encode("ascii"), body["seq"])
        except (TypeError, UnicodeEncodeError):
            tail = None
    if tail is not None:
        value = body["value"]
        t = type(value)
        try:
            if t is int:
                value_json = b"%d" % value
            elif t is str:
                value_json = _escape(value).encode("ascii")
            elif value is None or t is bool:
                value_json = _LITERALS[value]
            else:
                value_json = None
        except ValueError:  # an int over the str conversion limit: `dumps` reports it
            value_json = None
        if value_json is not None:
            if type(rid) is int:
                data = b'{"id":%d,"value":%s%s}' % (rid, value_json, tail)
            elif rid is None:
                data = b'{"id":null,"value":%s%s}' % (value_json, tail)
            else:
                data = b'{"id":%s,"value":%s%s}' % (_escape(rid).encode("ascii"), value_json, tail)
            return _pack_size(len(data)) + data
    answer = {"id": rid}
    answer.update(body)
    data = dumps(answer)
    return _pack_size(len(data)) + data


_pack_size = pack_size = struct.Struct(">I").pack  # the frame's 4-byte big-endian length
# A plain call's answer with an int value: `{"id": rid, "value": value, "call": call, "seq": 1}`
# (call ids are plain ASCII); the pipe formats it itself too.
PLAIN_INT = b'{"id":%d,"value":%d,"call":"%s","seq":1}'
PLAIN_INT_BODY = b'{"value":%d,"call":"%s","seq":1}'  # the same without the id (HTTP)
_LITERALS = {None: b"null", True: b"true", False: b"false"}


def loads(data):
    """A JSON object from bytes, or raise ValueError with a short reason."""
    try:
        text = data.decode("utf-8")
        start = 0 if text[:1] == "{" else len(text) - len(text.lstrip(_WS))
        obj, end = scan(text, start)
        if end != len(text) and text[end:].strip(_WS):
            raise ValueError("extra data at character %d" % end)
    except StopIteration as exc:
        raise ValueError("malformed JSON: expected a value at character %s" % exc.value) from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise ValueError("malformed JSON: %s" % exc) from None
    if type(obj) is not dict:
        raise ValueError("the request must be a JSON object")
    return obj


def error(kind, message):
    return {"error": {"type": kind, "message": message, "traceback": ""}}
