"""JSON in and out, shared by the HTTP and pipe transports.

The json module's C scanner and C encoder are called directly: `json.loads` and
`JSONEncoder.encode` add ~10 us of Python-level work per call on top of them.
"""

import json
import json.decoder
import json.encoder

_scan = json.decoder.JSONDecoder().scan_once  # the C scanner when available
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


def dumps(body):
    """`body` as compact ASCII JSON bytes; never raises for the bodies this package builds."""
    try:
        return _encode(body).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:  # values are checked before; be safe
        return json.dumps(error("InternalError", "could not encode the answer: %s" % exc)).encode()


def loads(data):
    """A JSON object from bytes, or raise ValueError with a short reason."""
    try:
        text = data.decode("utf-8")
        start = 0 if text[:1] == "{" else len(text) - len(text.lstrip(_WS))
        obj, end = _scan(text, start)
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
