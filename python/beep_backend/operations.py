"""The operations every transport offers: sessions, handles, values.

Everything here runs on the main thread (see `dispatcher.py`), one call at a time.
An operation takes the request as a dict and returns `(status, body)`; `status` is the
HTTP status the HTTP transport answers with, the other transports only look at `body`.
"""

import binascii
import builtins
import importlib
import sys
import time
from functools import partial
from types import FunctionType

MAX_REPR = 200
MAX_DEPTH = 100
_CODE_CACHE_SIZE = 512  # compiled `eval` and `exec` sources kept (code objects are immutable)
_CACHE_MAX_SOURCE = 16 * 1024  # longer sources are compiled on every call, not kept
_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else __file__.rsplit("\\", 1)[0]
_DISPATCHER = __file__[: len(_HERE) + 1] + "dispatcher.py"  # its signal handlers raise into user code
INTERRUPTED = "the call was interrupted"


class OpError(Exception):
    """A failure the protocol names itself (bad request, unknown handle), not user code."""

    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message

    def body(self):
        return {"error": {"type": self.kind, "message": self.message, "traceback": ""}}


def bad_request(message):
    return OpError(400, "BadRequest", message)


class CallTimeout(BaseException):
    """Raised on the main thread when a call runs past its `timeout` (reported as TimeoutError)."""


class _NotPlain(Exception):
    pass


def error_body(exc, source=None):
    """The `{"error": ...}` answer for an exception raised while running user code."""
    if isinstance(exc, OpError):
        return exc.status, exc.body()
    if isinstance(exc, CallTimeout):
        kind, status = "TimeoutError", 408
        message = str(exc) or "the call ran past its timeout"
    else:
        kind, status = type_name(type(exc)), 422
        try:
            message = str(exc)
        except Exception:
            message = "<str() of the exception failed>"
        if not message and isinstance(exc, KeyboardInterrupt):
            message = INTERRUPTED
    return status, {"error": {"type": kind, "message": message, "traceback": format_traceback(exc, source)}}


def format_traceback(exc, source=None):
    import linecache
    import traceback

    if source is not None:
        filename, code = source
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tb = exc.__traceback__
    # Drop the frames of this package so the traceback starts in user code.
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_HERE):
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and tb is not None:
        # A syntax error in the code sent (raised by `ast.parse` under `exec`): only the
        # parser's own frames are left, and the error's file and line say where it is.
        import ast

        parser = ast.__file__
        walk = tb
        while walk is not None and walk.tb_frame.f_code.co_filename in (parser, "<frozen ast>"):
            walk = walk.tb_next
        if walk is None:
            tb = None
    # And the dispatcher's signal handler that raised an interrupt or a timeout at its end.
    frames = []
    walk = tb
    while walk is not None:
        frames.append(walk.tb_frame.f_code.co_filename)
        walk = walk.tb_next
    keep = len(frames)
    while keep and frames[keep - 1] == _DISPATCHER:
        keep -= 1
    if not keep:
        tb = None
    if isinstance(exc, CallTimeout):  # reported as TimeoutError: say so in the last line too
        exc = TimeoutError(str(exc))
    try:
        return "".join(traceback.format_exception(type(exc), exc, tb, limit=keep))
    except Exception:
        return ""
    finally:
        if source is not None:
            linecache.cache.pop(source[0], None)


def type_name(cls):
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    if module in (None, "builtins", "__main__"):
        return name
    return module + "." + name


def safe_repr(obj):
    try:
        text = repr(obj)
    except BaseException as exc:  # a broken __repr__ must not break the answer
        text = "<repr failed: %s>" % type(exc).__name__
    if len(text) > MAX_REPR:
        text = text[: MAX_REPR - 3] + "..."
    return text


# Ints this long or longer have more digits than Python converts to text by default
# (`sys.get_int_max_str_digits`, 4300): they become handles, not a failed answer.
_HUGE = 10**4000
_NEG_HUGE = -_HUGE  # not negated per call: that copies a 1.7 KB int


def plain(value, depth=0):
    """`value` as JSON data (bytes as `{"$bytes": ...}`), or raise _NotPlain."""
    t = type(value)
    if t is str or t is bool or value is None or (t is int and _NEG_HUGE < value < _HUGE):
        return value
    if t is float:
        if value - value == 0:  # finite: inf - inf and nan - nan are nan
            return value
        raise _NotPlain
    if depth >= MAX_DEPTH:
        raise _NotPlain
    if t is list or t is tuple:
        return [plain(v, depth + 1) for v in value]
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str or k in ("$handle", "$bytes"):
                raise _NotPlain
            out[k] = plain(v, depth + 1)
        return out
    if t is bytes:
        return {"$bytes": binascii.b2a_base64(value, newline=False).decode("ascii")}
    raise _NotPlain


class Session:
    """A namespace plus the handles created in it."""

    __slots__ = ("by_object", "evals", "handles", "lease", "name", "namespace", "touched")

    def __init__(self, name):
        self.name = name
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.evals = {}  # an `eval` source -> its code as a function of the namespace (`op_eval`)
        self.handles = {}  # id -> [object, created, last_used]
        self.by_object = {}  # id(object) -> handle id
        self.lease = 0.0  # seconds without a request before the session is dropped; 0: never
        self.touched = 0.0  # monotonic time of the last request (kept only with a lease)

    def drop(self):
        """Release the handles and clear the namespace (an expired lease)."""
        self.handles.clear()
        self.by_object.clear()
        self.namespace.clear()
        self.evals.clear()


class Operations:
    """The operation table and the state it works on."""

    def __init__(self):
        self.sessions = {}
        self._next_handle = 0
        self._code_cache = {}
        self._evals_kept = 0  # functions in the sessions' `evals` (see `eval_function`)
        self._exec_count = 0
        self.table = {
            "exec": self.op_exec,
            "eval": self.op_eval,
            "import": self.op_import,
            "create": self.op_create,
            "call": self.op_call,
            "getattr": self.op_getattr,
            "setattr": self.op_setattr,
            "release": self.op_release,
            "handles": self.op_handles,
        }

    # ---- helpers -------------------------------------------------------------------

    def session(self, req):
        name = req.get("session")
        if name is None or name == "":
            name = "default"
        elif type(name) is not str:
            raise bad_request("`session` must be a string")
        s = self.sessions.get(name)
        if s is None:
            s = self.sessions[name] = Session(name)
        elif s.lease:
            s.touched = time.monotonic()
        return s

    def handle_count(self):
        return sum(len(s.handles) for s in list(self.sessions.values()))

    def encode(self, session, value):
        try:
            return plain(value)
        except _NotPlain:
            return self.handle_for(session, value)
        except RecursionError:
            return self.handle_for(session, value)

    def handle_for(self, session, obj):
        now = time.time()
        hid = session.by_object.get(id(obj))
        if hid is not None and session.handles[hid][0] is obj:
            session.handles[hid][2] = now
        else:
            self._next_handle += 1
            hid = "h%d" % self._next_handle
            session.handles[hid] = [obj, now, now]
            session.by_object[id(obj)] = hid
        return {"$handle": hid, "type": type_name(type(obj)), "repr": safe_repr(obj)}

    def lookup(self, session, ref, field="handle"):
        if type(ref) is dict and "$handle" in ref:
            ref = ref["$handle"]
        if type(ref) is not str:
            raise bad_request('`%s` must be a handle id like `h7` or {"$handle": "h7"}' % field)
        entry = session.handles.get(ref)
        if entry is None:
            raise OpError(422, "UnknownHandle", "no handle `%s` in session `%s`" % (ref, session.name))
        entry[2] = time.time()
        return entry[0]

    def decode(self, session, value, depth=0):
        """JSON data from a request to Python objects: handles and bytes resolved."""
        t = type(value)
        if t is dict:
            if "$handle" in value:  # `{"$handle": "h7"}`, or a whole handle value sent back
                return self.lookup(session, value["$handle"], "$handle")
            if len(value) == 1 and "$bytes" in value:
                data = value["$bytes"]
                if type(data) is not str:
                    raise bad_request("`$bytes` must be a base64 string")
                try:
                    return binascii.a2b_base64(data.encode("ascii"))
                except (ValueError, binascii.Error) as exc:
                    raise bad_request("`$bytes` is not valid base64: %s" % exc) from None
            if depth >= MAX_DEPTH:
                raise bad_request("arguments nested too deeply")
            return {k: self.decode(session, v, depth + 1) for k, v in value.items()}
        if t is list:
            if depth >= MAX_DEPTH:
                raise bad_request("arguments nested too deeply")
            return [self.decode(session, v, depth + 1) for v in value]
        return value

    def arguments(self, session, req):
        args = req.get("args")
        kwargs = req.get("kwargs")
        if args is None:
            args = []
        elif type(args) is not list:
            raise bad_request("`args` must be a list")
        if kwargs is None:
            kwargs = {}
        elif type(kwargs) is not dict:
            raise bad_request("`kwargs` must be an object")
        return self.decode(session, args), self.decode(session, kwargs)

    def compiled_eval(self, source):
        """The code object of an `eval` expression; cached under the source itself (`exec`
        entries are under `(source, "exec")`), so the common hit builds no key."""
        code = self._code_cache.get(source)
        if code is None:
            code = compile(source, "<eval>", "eval")
            self._keep(source, source, code)
        return code

    def _keep(self, source, key, entry):
        if len(source) > _CACHE_MAX_SOURCE:
            return
        if len(self._code_cache) >= _CODE_CACHE_SIZE:
            self._code_cache.clear()
        self._code_cache[key] = entry

    def resolve(self, session, path):
        parts = path.split(".")
        if not all(p.isidentifier() for p in parts):
            raise bad_request("`target` must be a dotted name like `collections.OrderedDict`")
        first = parts[0]
        if first in session.namespace:
            obj = session.namespace[first]
        elif len(parts) == 1 and hasattr(builtins, first):
            obj = getattr(builtins, first)
        else:
            obj = importlib.import_module(first)
        for i in range(1, len(parts)):
            try:
                obj = getattr(obj, parts[i])
            except AttributeError:
                if not isinstance(obj, type(sys)):
                    raise
                obj = importlib.import_module(obj.__name__ + "." + parts[i])
        return obj

    # ---- operations ----------------------------------------------------------------

    def op_exec(self, req):
        session = self.session(req)
        code = _required_str(req, "code")
        # The same source runs the cached code objects again, under its first file name (the
        # traceback's source lines are those of this source either way).
        cached = self._code_cache.get((code, "exec"))
        if cached is None:
            self._exec_count += 1
            filename = "<exec-%d>" % self._exec_count
        else:
            filename, body, last = cached
        # Output is captured by the call (`live.py`); the dispatcher adds `stdout`/`stderr`.
        try:
            if cached is None:
                body, last = self._compile_exec(code, filename)
                self._keep(code, (code, "exec"), (filename, body, last))
            exec(body, session.namespace)
            value = eval(last, session.namespace) if last is not None else None
        except BaseException as exc:
            return error_body(exc, (filename, code))
        return 200, {"value": self.encode(session, value)}

    @staticmethod
    def _compile_exec(code, filename):
        import ast

        tree = ast.parse(code, filename, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
        return compile(tree, filename, "exec"), last

    def op_eval(self, req):
        # The common call, `{"op": "eval", "expr": ...}` in an existing session, takes the
        # short way; anything else goes through `session` and `_required_str`, which check.
        try:
            session = self.sessions.get(req.get("session", "default"))
        except TypeError:  # unhashable: `session` below says what is wrong with it
            session = None
        if session is None:  # (a new session, or not a string: `session` checks)
            session = self.session(req)
        elif session.lease:
            session.touched = time.monotonic()
        expr = req.get("expr")
        if type(expr) is not str:
            expr = _required_str(req, "expr")  # raises
        fn = session.evals.get(expr)
        try:  # (the function holds the builtins the namespace had: see `eval_function`)
            if fn is None or session.namespace["__builtins__"] is not builtins:
                fn = self.eval_function(session, expr)
        except KeyError:
            fn = self.eval_function(session, expr)
        value = fn()
        t = type(value)
        # JSON as it is (see `plain`); an int first: the common value, and the test that costs most.
        if (t is int and _NEG_HUGE < value < _HUGE) or t is str or t is bool or value is None:
            return 200, {"value": value}
        return 200, {"value": self.encode(session, value)}

    def eval_function(self, session, expr):
        """`expr` as a function without arguments that evaluates it in the session.

        `eval(code, namespace)` makes a function object of the code on every call and runs it
        in a C-level call of its own: ~800 instructions more than calling a function made once.
        The session keeps that function (its globals are the namespace, and it took the
        builtins from the namespace's `__builtins__` when it was made): exactly what `eval`
        does while `__builtins__` stays the builtins module (`op_eval` checks), else `eval`.
        """
        code = self._code_cache.get(expr) or self.compiled_eval(expr)
        namespace = session.namespace
        if namespace.get("__builtins__") is not builtins or len(expr) > _CACHE_MAX_SOURCE:
            return partial(eval, code, namespace)
        if self._evals_kept >= _CODE_CACHE_SIZE:  # all sessions together keep as many as the code cache
            for other in list(self.sessions.values()):
                other.evals.clear()
            self._evals_kept = 0
        fn = session.evals[expr] = FunctionType(code, namespace)
        self._evals_kept += 1
        return fn

    def op_import(self, req):
        session = self.session(req)
        module = importlib.import_module(_required_str(req, "module"))
        return 200, {"value": self.handle_for(session, module)}

    def op_create(self, req):
        session = self.session(req)
        if "target" not in req:
            raise bad_request("missing field `target`")
        target = req["target"]
        if type(target) is str:
            if target.startswith("h") and target in session.handles:
                target = self.lookup(session, target, "target")
            else:
                target = self.resolve(session, target)
        elif type(target) is dict:
            target = self.lookup(session, target, "target")
        else:
            raise bad_request("`target` must be a dotted path or a handle")
        args, kwargs = self.arguments(session, req)
        return 200, {"value": self.encode(session, target(*args, **kwargs))}

    def op_call(self, req):
        session = self.session(req)
        method = _required_str(req, "method")
        obj = self.lookup(session, _required(req, "handle"))
        args, kwargs = self.arguments(session, req)
        return 200, {"value": self.encode(session, getattr(obj, method)(*args, **kwargs))}

    def op_getattr(self, req):
        session = self.session(req)
        name = _required_str(req, "name")
        obj = self.lookup(session, _required(req, "handle"))
        return 200, {"value": self.encode(session, getattr(obj, name))}

    def op_setattr(self, req):
        session = self.session(req)
        name = _required_str(req, "name")
        value = _required(req, "value")
        obj = self.lookup(session, _required(req, "handle"))
        value = self.decode(session, value)
        setattr(obj, name, value)
        return 200, {"value": None}

    def op_release(self, req):
        session = self.session(req)
        ref = _required(req, "handle")
        self.lookup(session, ref)
        hid = ref["$handle"] if type(ref) is dict else ref
        obj = session.handles.pop(hid)[0]
        if session.by_object.get(id(obj)) == hid:
            del session.by_object[id(obj)]
        return 200, {"value": True}

    def op_handles(self, req):
        session = self.session(req)
        now = time.time()
        return 200, {
            "value": [
                {
                    "id": hid,
                    "type": type_name(type(entry[0])),
                    "repr": safe_repr(entry[0]),
                    "created": entry[1],
                    "last_used": entry[2],
                    "age": now - entry[1],
                }
                for hid, entry in list(session.handles.items())
            ]
        }


def _required(req, name):
    try:
        return req[name]
    except KeyError:
        raise bad_request("missing field `%s`" % name) from None


def _required_str(req, name):
    value = _required(req, name)
    if type(value) is not str:
        raise bad_request("`%s` must be a string" % name)
    return value
