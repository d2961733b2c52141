"""Every operation on every transport, against a real backend process."""

import threading
import time
import uuid

import pytest
from backend_clients import b64


def session():
    return "s-" + uuid.uuid4().hex[:8]


def test_eval(client):
    assert client.request("eval", expr="1+1") == {"value": 2}
    assert client.request("eval", expr="{'a': [1, 2.5, None, True, 'x']}") == {
        "value": {"a": [1, 2.5, None, True, "x"]}
    }


def test_exec_returns_stdout_stderr_and_trailing_value(client):
    s = session()
    answer = client.request(
        "exec", session=s, code="import sys\nprint('out')\nprint('err', file=sys.stderr)\nx = 20\nx + 1"
    )
    assert answer == {"stdout": "out\n", "stderr": "err\n", "value": 21}
    answer = client.request("exec", session=s, code="y = x * 2")
    assert answer == {"stdout": "", "stderr": "", "value": None}
    assert client.request("eval", session=s, expr="y") == {"value": 40}


def test_non_json_values_become_handles(client):
    s = session()
    value = client.request("eval", session=s, expr="object()")["value"]
    assert value["$handle"].startswith("h")
    assert value["type"] == "object"
    assert value["repr"].startswith("<object object at")
    long = client.request(
        "eval", session=s, expr="type('Long', (), {'__repr__': lambda self: 'x' * 1000})()"
    )["value"]
    assert len(long["repr"]) == 200


def test_ints_too_long_for_text_become_handles(client):
    s = session()
    for expr in ("10**5000", "-(10**5000)", "[1, 10**5000]"):
        value = client.request("eval", session=s, expr=expr)["value"]
        assert value["$handle"].startswith("h"), (expr, value)
    assert client.request("exec", session=s, code="n = 10**5000\nn")["value"]["type"] == "int"
    assert client.request("eval", session=s, expr="len(str(n // 10**4500))") == {"value": 501}
    assert client.request("eval", session=s, expr="10**3999") == {"value": 10**3999}


def test_import_create_call_getattr_setattr_release_handles(client):
    s = session()
    mod = client.request("import", session=s, module="collections")["value"]
    assert mod["type"] == "module" and "collections" in mod["repr"]

    od = client.request("create", session=s, target="collections.OrderedDict", kwargs={"a": 1})["value"]
    assert od["type"] == "collections.OrderedDict"
    # the same class through the module handle
    cls = client.request("getattr", session=s, handle=mod, name="Counter")["value"]
    counter = client.request("create", session=s, target=cls, args=["abca"])["value"]
    assert counter["type"] == "collections.Counter"
    assert client.request("call", session=s, handle=counter, method="most_common", args=[1]) == {
        "value": [["a", 2]]
    }

    # a handle passed back as an argument means that object
    assert client.request("call", session=s, handle=od, method="update", args=[counter]) == {"value": None}
    assert client.request("call", session=s, handle=od["$handle"], method="get", args=["b"]) == {"value": 1}
    assert client.request("call", session=s, handle={"$handle": od["$handle"]}, method="__len__") == {
        "value": 3
    }

    ns = client.request("create", session=s, target="types.SimpleNamespace", kwargs={"x": 1})["value"]
    assert client.request("setattr", session=s, handle=ns, name="y", value={"$handle": od["$handle"]}) == {
        "value": None
    }
    y = client.request("getattr", session=s, handle=ns, name="y")["value"]
    assert y["$handle"] == od["$handle"]  # the same object keeps its handle
    assert client.request("getattr", session=s, handle=ns, name="x") == {"value": 1}

    listed = client.request("handles", session=s)["value"]
    ids = [h["id"] for h in listed]
    assert set(ids) == {mod["$handle"], od["$handle"], cls["$handle"], counter["$handle"], ns["$handle"]}
    for h in listed:
        assert set(h) == {"id", "type", "repr", "created", "last_used", "age"}
        assert h["last_used"] >= h["created"] > time.time() - 60

    assert client.request("release", session=s, handle=od) == {"value": True}
    gone = client.request("call", session=s, handle=od, method="keys")
    assert gone["error"]["type"] == "UnknownHandle"
    assert len(client.request("handles", session=s)["value"]) == 4


def test_create_by_builtin_name_and_session_name(client):
    s = session()
    assert client.request("create", session=s, target="dict", kwargs={"a": 1}) == {"value": {"a": 1}}
    client.request("exec", session=s, code="class Point:\n    def __init__(self, x): self.x = x")
    p = client.request("create", session=s, target="Point", args=[3])["value"]
    assert p["type"] == "Point"
    assert client.request("getattr", session=s, handle=p, name="x") == {"value": 3}
    assert client.request("create", session=s, target="os.path.join", args=["a", "b"]) == {"value": "a/b"}


def test_sessions_are_isolated(client):
    a, b = session(), session()
    client.request("exec", session=a, code="secret = 41")
    answer = client.request("eval", session=b, expr="secret")
    assert answer["error"]["type"] == "NameError"
    assert client.request("eval", session=a, expr="secret + 1") == {"value": 42}
    h = client.request("eval", session=a, expr="object()")["value"]
    assert (
        client.request("getattr", session=b, handle=h, name="__class__")["error"]["type"] == "UnknownHandle"
    )
    assert all(x["id"] != h["$handle"] for x in client.request("handles", session=b)["value"])
    # the default session is `default`
    client.request("exec", code="in_default = 1")
    assert client.request("eval", session="default", expr="in_default") == {"value": 1}


def test_bytes_round_trip(client):
    s = session()
    data = bytes(range(256))
    assert client.request("eval", session=s, expr="bytes(range(256))") == {"value": b64(data)}
    client.request("exec", session=s, code="def echo(x): return x")
    f = client.request("eval", session=s, expr="echo")["value"]
    answer = client.request("create", session=s, target=f, args=[b64(data)])
    assert answer == {"value": b64(data)}
    assert client.request("create", session=s, target="len", args=[b64(data)]) == {"value": 256}


def test_user_exception_then_next_call_works(client):
    answer = client.request("eval", expr="1/0")
    err = answer["error"]
    assert err["type"] == "ZeroDivisionError"
    assert err["message"] == "division by zero"
    assert "Traceback" in err["traceback"] and "ZeroDivisionError" in err["traceback"]
    assert "beep_backend" not in err["traceback"]
    assert client.request("eval", expr="2+2") == {"value": 4}


def test_exec_exception_keeps_output_and_source_lines(client):
    answer = client.request("exec", code="print('before')\ndef f():\n    raise ValueError('boom')\nf()")
    assert answer["error"]["type"] == "ValueError"
    assert answer["error"]["message"] == "boom"
    assert "raise ValueError('boom')" in answer["error"]["traceback"]
    assert answer["stdout"] == "before\n"
    syntax = client.request("exec", code="def (:")
    assert syntax["error"]["type"] == "SyntaxError"
    system_exit = client.request("exec", code="raise SystemExit(3)")
    assert system_exit["error"]["type"] == "SystemExit"
    assert client.request("eval", expr="'alive'") == {"value": "alive"}


def assert_user_traceback(error, code, last_line):
    """The traceback ends in user code (a line of `code`) and names the error: none of the
    server's frames."""
    tb = error["traceback"]
    assert "beep_backend" not in tb and "_on_sigint" not in tb and "_on_alarm" not in tb, tb
    lines = tb.rstrip("\n").splitlines()
    assert lines[0] == "Traceback (most recent call last):", tb
    assert lines[-3].startswith('  File "<exec-'), tb
    assert lines[-2].strip() in [line.strip() for line in code.splitlines()], tb
    assert lines[-1] == last_line, tb


def test_exec_timeout(client):
    t0 = time.monotonic()
    answer = client.request("exec", code="import time\ntime.sleep(10)", timeout=0.3)
    assert time.monotonic() - t0 < 3
    assert answer["error"]["type"] == "TimeoutError"
    assert_user_traceback(
        answer["error"], "import time\ntime.sleep(10)", "TimeoutError: exec timed out after 0.3 s"
    )
    assert client.request("exec", code="1", timeout=5) == {"stdout": "", "stderr": "", "value": 1}


def test_info(client, transport, backend):
    info = client.request("info")["value"]
    expected = {
        "python_version",
        "executable",
        "prefix",
        "env_name",
        "pid",
        "transport",
        "started_at",
        "handles",
        "busy",
    }
    assert set(info) == expected
    assert info["busy"] is False
    assert info["transport"] == transport
    assert info["pid"] == backend.proc.pid
    assert info["python_version"].count(".") == 2
    assert time.time() - 600 < info["started_at"] <= time.time()
    assert isinstance(info["handles"], int)


@pytest.mark.parametrize(
    "code", ["import time\ntime.sleep(30)", "while True:\n    pass"], ids=["sleep", "loop"]
)
def test_interrupt_stops_call(backend, transport, code):
    runner = backend.client()
    other = backend.client()
    result = {}

    def run():
        result["answer"] = runner.request("exec", code=code)
        result["t"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 5
    interrupted = False
    while time.monotonic() < deadline and not interrupted:
        time.sleep(0.05)
        sent = time.monotonic()
        interrupted = other.request("interrupt")["value"]
    t.join(5)
    assert interrupted
    assert result["t"] - sent < 1.0
    error = result["answer"]["error"]
    assert error["type"] == "KeyboardInterrupt"
    assert error["message"] == "the call was interrupted"
    assert_user_traceback(error, code, "KeyboardInterrupt: the call was interrupted")
    assert other.request("interrupt") == {"value": False}
    assert runner.request("eval", expr="'still here'") == {"value": "still here"}
    runner.close()
    other.close()


def test_interrupt_storm_leaves_server_sound(backend):
    """Interrupts racing with calls that end: only calls are hit, the server lives on."""
    runner = backend.client()
    stopper = backend.client()
    stop = threading.Event()

    def storm():
        while not stop.is_set():
            stopper.request("interrupt")

    t = threading.Thread(target=storm)
    t.start()
    try:
        outcomes = set()
        for i in range(150):
            if i % 3 == 0:
                answer = runner.request("exec", code="import time\ntime.sleep(0.002)\n%d" % i, timeout=5)
            else:
                answer = runner.request("eval", expr="sum(range(2000)) and %d" % i)
            if "error" in answer:
                outcomes.add(answer["error"]["type"])
            else:
                assert answer["value"] == i
        assert outcomes <= {"KeyboardInterrupt"}
    finally:
        stop.set()
        t.join(10)
    # no stale timer or pending interrupt hits a later call
    answer = runner.request("exec", code="import time\ntime.sleep(0.3)\n'done'")
    assert answer["value"] == "done"
    assert runner.request("eval", expr="1") == {"value": 1}
    runner.close()
    stopper.close()


def test_short_timeout_right_after_quick_calls(client):
    """A timer left pending by earlier calls must not delay a shorter exec timeout."""
    for _ in range(20):
        client.request("eval", expr="1")
    t0 = time.monotonic()
    answer = client.request("exec", code="import time\ntime.sleep(5)", timeout=0.02)
    assert answer["error"]["type"] == "TimeoutError"
    assert time.monotonic() - t0 < 1.0
    for _ in range(5):  # and no stale timeout hits the next calls
        answer = client.request("exec", code="import time\ntime.sleep(0.06)\n'ok'")
        assert answer["value"] == "ok"


def test_repeated_interrupts(backend):
    """Each of several long calls in a row is stopped promptly (no lost signal)."""
    runner = backend.client()
    other = backend.client()
    for _ in range(8):
        result = {}

        def run(result=result):
            result["answer"] = runner.request("exec", code="import time\ntime.sleep(30)")
            result["t"] = time.monotonic()

        t = threading.Thread(target=run)
        t.start()
        interrupted = False
        deadline = time.monotonic() + 5
        while not interrupted and time.monotonic() < deadline:
            time.sleep(0.03)
            sent = time.monotonic()
            interrupted = other.request("interrupt")["value"]
        t.join(5)
        assert interrupted and "t" in result
        assert result["t"] - sent < 1.0
        assert result["answer"]["error"]["type"] == "KeyboardInterrupt"
    runner.close()
    other.close()


def test_exec_of_the_same_source_again(client):
    """Re-running a source (its compiled code is cached) behaves like running it anew."""
    s1, s2 = session(), session()
    code = "def f():\n    return n * 2\nitems = globals().setdefault('items', [])\nitems.append(f())\nf()"
    assert client.request("exec", code="n = 1", session=s1)["value"] is None
    assert client.request("exec", code="n = 10", session=s2)["value"] is None
    assert client.request("exec", code=code, session=s1)["value"] == 2
    assert client.request("exec", code=code, session=s2)["value"] == 20  # other globals
    client.request("exec", code="n = 3", session=s1)
    assert client.request("exec", code=code, session=s1)["value"] == 6
    assert client.request("eval", expr="items", session=s1) == {"value": [2, 6]}
    # The function defined twice is a new object each time, bound to its session's globals.
    assert client.request("eval", expr="f.__globals__['n']", session=s2) == {"value": 10}
    assert client.request("exec", code="g = f", session=s1)["value"] is None
    client.request("exec", code=code, session=s1)
    assert client.request("eval", expr="g is not f and g() == f()", session=s1) == {"value": True}
    # Output is captured on every run; errors in a re-run source keep their source lines.
    for _ in range(3):
        assert client.request("exec", code="print('hi', n)", session=s1)["stdout"] == "hi 3\n"
        failing = "x = 1\nraise KeyError(n)"
        answer = client.request("exec", code=failing, session=s1)
        assert answer["error"]["type"] == "KeyError"
        assert "raise KeyError(n)" in answer["error"]["traceback"]
    # A trailing expression is evaluated on each run.
    assert [client.request("exec", code="n += 1\nn", session=s1)["value"] for _ in range(3)] == [4, 5, 6]
    # eval's cache: the same expression in two sessions.
    assert client.request("eval", expr="n", session=s1) == {"value": 6}
    assert client.request("eval", expr="n", session=s2) == {"value": 10}


def test_eval_of_the_same_expression_again(client):
    """Re-evaluating an expression (the session keeps it as a function) behaves like `eval`
    anew: the namespace as it is now, its `__builtins__` as they are now, the same errors."""
    s1, s2 = session(), session()
    client.request("exec", code="n = 1", session=s1)
    client.request("exec", code="n = 10", session=s2)
    for n1, n2 in ((1, 10), (2, 20)):
        assert client.request("eval", expr="n * 3", session=s1) == {"value": 3 * n1}
        assert client.request("eval", expr="n * 3", session=s2) == {"value": 3 * n2}
        client.request("exec", code="n *= 2", session=s1)
        client.request("exec", code="n *= 2", session=s2)
    # Names bound by the expression go to the namespace; its locals are its globals.
    for expected in (5, 6):
        assert client.request("eval", expr="(z := n + 1)", session=s1) == {"value": expected}
        client.request("exec", code="n += 1", session=s1)
    assert client.request("eval", expr="z", session=s1) == {"value": 6}
    assert client.request("eval", expr="locals() is globals()", session=s1) == {"value": True}
    # `__builtins__` replaced, removed, given back: each `eval` uses the namespace's own.
    assert client.request("eval", expr="len('abc')", session=s1) == {"value": 3}
    other = "import builtins\n__builtins__ = dict(vars(builtins), len=lambda x: -1)"
    client.request("exec", code=other, session=s1)
    assert client.request("eval", expr="len('abc')", session=s1) == {"value": -1}
    client.request("exec", code="__builtins__ = builtins", session=s1)
    assert client.request("eval", expr="len('abc')", session=s1) == {"value": 3}
    client.request("exec", code="del globals()['__builtins__']", session=s1)
    assert client.request("eval", expr="len('abc')", session=s1) == {"value": 3}
    assert client.request("eval", expr="len('abc')", session=s1) == {"value": 3}
    # Errors and their tracebacks are the same on every run.
    answers = [client.request("eval", expr="n // 0", session=s1) for _ in range(3)]
    assert answers[0]["error"]["type"] == "ZeroDivisionError"
    assert "beep_backend" not in answers[0]["error"]["traceback"]
    assert answers[1] == answers[0] and answers[2] == answers[0]


def test_eval_keeps_a_bounded_number_of_expressions_over_all_sessions(client):
    """The functions `eval` keeps for expressions (see the test above) are bounded over all
    sessions together, like the code cache: many sessions with many expressions do not grow
    the server without end."""
    sessions = [session() for _ in range(3)]
    for s in sessions:
        for k in range(400):
            assert client.request("eval", expr="%d + 0" % k, session=s) == {"value": k}
    count = (
        "import gc, types\n"
        "sum(1 for o in gc.get_objects() if type(o) is types.FunctionType"
        " and o.__code__.co_filename == '<eval>')"
    )
    kept = client.request("exec", code=count)["value"]
    assert 0 < kept <= 512, kept
    assert client.request("eval", expr="399 + 0", session=sessions[0]) == {"value": 399}
