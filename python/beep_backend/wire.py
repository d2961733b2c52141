"""JSON in and out, shared by the HTTP and pipe transports."""

import json

_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_decode = json.loads


def dumps(body):
    """`body` as compact JSON bytes; never raises for the bodies this package builds."""
    try:
        return _encoder.encode(body).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError) as exc:  # should not happen: values are checked before
        return _encoder.encode(
            {"error": {"type": "InternalError", "message": "could not encode the answer: %s" % exc, "traceback": ""}}
        ).encode()


def loads(data):
    """A JSON object from bytes, or raise ValueError with a short reason."""
    try:
        obj = _decode(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise ValueError("malformed JSON: %s" % exc) from None
    if type(obj) is not dict:
        raise ValueError("the request must be a JSON object")
    return obj


def error(kind, message):
    return {"error": {"type": kind, "message": message, "traceback": ""}}
