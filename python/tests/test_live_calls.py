"""Call ids, per-call capture of fd 1/2, `calls` states, `interrupt` naming a call, leases."""

import time

import pytest
from backend_clients import wait_for


def test_fd_output_belongs_to_its_call_only(client):
    """`os.write(1, ...)` (what C code does) and fd 2 are captured for the call that wrote."""
    client.request("exec", code="import os, sys")
    for i in range(60):
        answer = client.request(
            "exec", code="os.write(1, b'fd-%d\\n')\nos.write(2, b'err-%d\\n')\nprint('py-%d')" % (i, i, i)
        )
        assert answer["stdout"] in ("fd-%d\npy-%d\n" % (i, i), "py-%d\nfd-%d\n" % (i, i)), answer
        assert answer["stderr"] == "err-%d\n" % i
        # An eval that writes to fd 1 right before it ends: its output is its own, not the next call's.
        assert client.request("eval", expr="os.write(1, b'tail-%d\\n')" % i) == {"value": 6 + len(str(i))}
    answer = client.request("exec", code="print('clean')")
    assert answer["stdout"] == "clean\n"


def test_fd_output_of_a_child_process_is_captured(client):
    import sys

    answer = client.request(
        "exec",
        code="import subprocess\nsubprocess.run([%r, '-c', 'print(\"from the child\")'])\nNone"
        % sys.executable,
    )
    assert answer["stdout"] == "from the child\n"


def _row(client, call):
    return next(r for r in client.request("calls")["value"] if r["call"] == call)


def test_calls_list_states_and_interrupt_names_a_call(backend, transport):
    c = backend.client()
    other = backend.client()
    tag = "%s-%d" % (transport, time.monotonic_ns())
    try:
        assert c.request("eval", expr="1", call="ok-" + tag) == {"value": 1}
        assert c.request("exec", code="1/0", call="fail-" + tag)["error"]["type"] == "ZeroDivisionError"
        answer = c.request("exec", code="import time\ntime.sleep(5)", timeout=0.2, call="slow-" + tag)
        assert answer["error"]["type"] == "TimeoutError"
        # A long call, interrupted by naming it from another client; naming another call does nothing.
        import threading

        result = {}

        def run():
            result["answer"] = c.request("exec", code="import time\ntime.sleep(10)", call="long-" + tag)

        t = threading.Thread(target=run)
        t.start()
        assert wait_for(lambda: any(r["call"] == "long-" + tag for r in other.request("calls")["value"]))
        row = _row(other, "long-" + tag)
        assert row["state"] == "running" and row["duration"] is None and row["op"] == "exec"
        assert other.request("interrupt", call="ok-" + tag) == {"value": False}
        assert other.request("interrupt", call="long-" + tag) == {"value": True}
        t.join(5)
        assert result["answer"]["error"]["type"] == "KeyboardInterrupt"
        states = {r["call"]: r for r in other.request("calls")["value"]}
        assert states["ok-" + tag]["state"] == "done"
        assert states["fail-" + tag]["state"] == "failed"
        assert states["slow-" + tag]["state"] == "timed_out"
        assert states["long-" + tag]["state"] == "interrupted"
        assert 0.15 < states["slow-" + tag]["duration"] < 2
        assert all(r["session"] == "default" for r in states.values())
        calls = list(states)
        assert (
            calls.index("ok-" + tag) < calls.index("fail-" + tag) < calls.index("long-" + tag)
        )  # oldest first
        # Another session's calls show only with `all`.
        c.request("eval", expr="2", session="elsewhere", call="else-" + tag)
        assert "else-" + tag not in {r["call"] for r in c.request("calls")["value"]}
        assert "else-" + tag in {r["call"] for r in c.request("calls", all=True)["value"]}
        # Server-assigned ids: answers carry them.
        c.request("eval", expr="3")
        assert c.last_call.startswith("c")
    finally:
        c.close()
        other.close()


def test_syntax_error_traceback_shows_only_the_users_code(client):
    answer = client.request("exec", code="x = 1\nif x\n    pass")
    error = answer["error"]
    assert error["type"] == "SyntaxError"
    assert "ast.py" not in error["traceback"] and "beep_backend" not in error["traceback"]
    assert "Traceback" not in error["traceback"]  # no frames at all: the code never ran
    assert 'File "<exec-' in error["traceback"] and "line 2" in error["traceback"]
    assert "if x" in error["traceback"]
    answer = client.request("eval", expr="1 +")
    assert answer["error"]["type"] == "SyntaxError"
    assert "Traceback" not in answer["error"]["traceback"]
    # A SyntaxError raised by user code keeps the user's frames.
    answer = client.request("exec", code="def f():\n    compile('1 +', 'inner', 'eval')\nf()")
    tb = answer["error"]["traceback"]
    assert "Traceback" in tb and "in f" in tb and "beep_backend" not in tb


@pytest.mark.parametrize("seconds", [0.6])
def test_an_expired_lease_releases_the_sessions_handles(backend, transport, seconds):
    c = backend.client()
    session = "leased-%s-%d" % (transport, time.monotonic_ns())
    try:
        c.request(
            "exec",
            session=session,
            code="import weakref, builtins\nclass Thing:\n    pass\n"
            "t = Thing()\nbuiltins.watch_%s = weakref.ref(t)\n" % transport,
        )
        handle = c.request("eval", session=session, expr="t")["value"]
        c.request("exec", session=session, code="del t")  # only the handle keeps it now
        assert c.request("lease", session=session, seconds=seconds) == {"value": True}
        alive = "watch_%s() is not None" % transport
        # Requests in the session renew the lease.
        until = time.monotonic() + 2 * seconds
        while time.monotonic() < until:
            rows = c.request("handles", session=session)["value"]
            assert [r["id"] for r in rows] == [handle["$handle"]]
            assert rows[0]["age"] >= 0
            time.sleep(seconds / 4)
        assert c.request("eval", expr=alive) == {"value": True}
        # No request for longer than the lease: the handle is released, the object collected.
        t0 = time.monotonic()
        assert wait_for(lambda: c.request("eval", expr=alive) == {"value": False}, timeout=5)
        assert time.monotonic() - t0 < seconds + 1.5
        assert c.request("handles", session=session) == {"value": []}
        assert c.request("eval", session=session, expr="'Thing' in globals()") == {"value": False}
    finally:
        c.close()
