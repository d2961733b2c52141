"""Plain calls (a server-assigned id, not streamed, not `exec`) take the server's cheap way
(`Dispatcher.run_call`): they must still be listed, attachable, interruptible by id, and keep
their output. And `exec` output (buffered while it runs) keeps its order and its semantics."""

import threading
import time

from backend_clients import Backend, backend_env, wait_for
from live_clients import attach, stream


def _rows(client, **fields):
    return {r["call"]: r for r in client.request("calls", **fields)["value"]}


def test_a_plain_eval_is_listed_with_its_state_and_attachable(backend, transport):
    c = backend.client()
    try:
        before = time.time()
        assert c.request("eval", expr="6 * 7") == {"value": 42}
        ok = c.last_call
        assert c.request("eval", expr="1 / 0")["error"]["type"] == "ZeroDivisionError"
        failed = c.last_call
        assert ok.startswith("c") and failed.startswith("c") and ok != failed
        rows = _rows(c)
        row = rows[ok]
        assert row["op"] == "eval" and row["state"] == "done" and row["session"] == "default"
        assert row["output_bytes"] == 0
        assert before - 1 <= row["started"] <= time.time() + 1
        assert 0 <= row["duration"] < 5
        assert rows[failed]["state"] == "failed"
        assert list(rows).index(ok) < list(rows).index(failed)  # oldest first
        # Attach to a plain call that ended: its end and nothing else.
        events = list(attach(transport, backend.address, backend.token, ok))
        assert len(events) == 1, events
        assert events[0]["body"]["value"] == 42
        assert events[0]["body"]["call"] == ok and events[0]["body"]["seq"] == 1
        events = list(attach(transport, backend.address, backend.token, failed))
        assert events[-1]["body"]["error"]["type"] == "ZeroDivisionError"
        assert events[-1]["body"]["call"] == failed
    finally:
        c.close()


def test_a_plain_eval_that_prints_keeps_its_output(backend, transport):
    c = backend.client()
    try:
        answer = c.request("eval", expr="print('hi') or __import__('sys').stderr.write('err\\n')")
        assert answer == {"value": 4}
        cid = c.last_call
        events = list(attach(transport, backend.address, backend.token, cid))
        assert [(e["stream"], e["seq"], e["data"]) for e in events[:-1]] == [
            ("stdout", 1, "hi\n"),
            ("stderr", 2, "err\n"),
        ]
        assert events[-1]["body"]["value"] == 4 and events[-1]["body"]["seq"] == 3  # after the output
        assert _rows(c)[cid]["output_bytes"] == 7
        # The next plain call is plain again: no output, its end is seq 1.
        assert c.request("eval", expr="1") == {"value": 1}
        events = list(attach(transport, backend.address, backend.token, c.last_call))
        assert len(events) == 1 and events[0]["body"]["seq"] == 1
    finally:
        c.close()


def test_a_running_plain_eval_is_listed_attached_and_interrupted_by_id(backend, transport):
    c = backend.client()
    other = backend.client()
    try:
        c.request("exec", code="import time")
        result = {}
        t = threading.Thread(target=lambda: result.update(a=c.request("eval", expr="time.sleep(0.6) or 7")))
        t.start()
        running = []
        assert wait_for(
            lambda: running.extend(r for r in _rows(other).values() if r["state"] == "running") or running
        )
        cid = running[0]["call"]
        assert running[0]["op"] == "eval" and running[0]["duration"] is None
        # A reader attached while it runs gets its end when it ends.
        events = list(attach(transport, backend.address, backend.token, cid))
        t.join(5)
        assert result["a"] == {"value": 7}
        assert events[-1]["body"]["value"] == 7 and events[-1]["body"]["call"] == cid
        assert _rows(other)[cid]["state"] == "done"
        # `interrupt` naming a running plain call interrupts it; naming an ended one does not.
        t = threading.Thread(target=lambda: result.update(b=c.request("eval", expr="time.sleep(10)")))
        t.start()
        running = []
        assert wait_for(
            lambda: running.extend(r for r in _rows(other).values() if r["state"] == "running") or running
        )
        assert other.request("interrupt", call=cid) == {"value": False}
        assert other.request("interrupt", call=running[0]["call"]) == {"value": True}
        t.join(5)
        assert result["b"]["error"]["type"] == "KeyboardInterrupt"
        assert _rows(other)[running[0]["call"]]["state"] == "interrupted"
    finally:
        c.close()
        other.close()


def test_exec_output_keeps_its_order_and_stdout_behaves_like_a_text_file(backend, transport):
    c = backend.client()
    # A lone surrogate goes through as before (JSON escapes it); protobuf strings cannot hold one.
    odd = "\udcff" if transport != "grpc" else "\u00ff"
    try:
        code = (
            "import sys\n"
            "print('a')\n"
            "sys.stderr.write('b\\n')\n"
            "print('c', end='')\n"
            "buf = bytearray(b'-xy\\n')\n"
            "sys.stdout.buffer.write(buf)\n"
            "buf[:] = b'ZZZZ'\n"
            "print(%r)\n"
            "n = sys.stdout.write('four')\n"
        ) % odd
        answer = c.request("exec", code=code)
        assert answer["stdout"] == "a\nc-xy\n%s\nfour" % odd and answer["stderr"] == "b\n", answer
        assert c.request("eval", expr="n") == {"value": 4}  # write returns the characters written
        events = list(stream(transport, backend.address, backend.token, "exec", {"code": code}))
        assert [(e["stream"], e["data"]) for e in events if e["event"] == "output"] in (
            [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c-xy\n%s\nfour" % odd)],
            [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c-xy\n"), ("stdout", "%s\nfour" % odd)],
        )
        answer = c.request("exec", code="sys.stdout.write(b'x')")
        assert answer["error"]["type"] == "TypeError"
        assert c.request("eval", expr="sys.stdout.encoding") == {"value": "utf-8"}
        assert c.request("eval", expr="sys.stdout.fileno()") == {"value": 1}
    finally:
        c.close()


def test_an_unstreamed_exec_over_the_journal_bound_still_answers_with_all_of_it():
    env = backend_env("t" * 64, BEEP_BACKEND_JOURNAL_BYTES=str(256 * 1024))
    b = Backend("pipe", token="t" * 64, env=env)
    try:
        c = b.client()
        c.strip_live = False
        answer = c.request("exec", code="for i in range(16):\n    print(str(i % 10) * 65535)\n")
        assert answer["stdout"] == "".join(str(i % 10) * 65535 + "\n" for i in range(16))
        events = list(attach("pipe", b.address, b.token, answer["call"]))
        assert events[0]["event"] == "dropped" and events[-1]["body"]["stdout"] == ""
        c.close()
    finally:
        b.stop()


def _output(transport, backend, cid):
    events = list(attach(transport, backend.address, backend.token, cid))
    return "".join(e["data"] for e in events if e["event"] == "output" and e["stream"] == "stdout")


def test_fd_output_of_a_plain_eval_is_its_own_also_many_writes_and_without_our_signal(backend, transport):
    """A plain call's end looks at the fd pipes only after a signal said they got data: a
    write to fd 1 right before the end, many writes, and user code that takes the signal for
    itself all keep fd output with its call."""
    c = backend.client()
    try:
        c.request("exec", code="import os, signal")
        for i in range(30):
            assert c.request("eval", expr="os.write(1, b'tail-%d\\n')" % i) == {"value": 6 + len(str(i))}
            assert _output(transport, backend, c.last_call) == "tail-%d\n" % i
            assert c.request("eval", expr="1") == {"value": 1}
            assert _output(transport, backend, c.last_call) == ""
        assert c.request("eval", expr="[os.write(1, b'x' * 10 + b'\\n') for _ in range(5000)][-1]") == {
            "value": 11
        }
        assert _output(transport, backend, c.last_call) == "xxxxxxxxxx\n" * 5000
        # User code takes SIGURG: fd output still goes to its call (checked at every end).
        c.request("exec", code="old = signal.signal(signal.SIGURG, signal.SIG_IGN)")
        for i in range(3):
            assert c.request("eval", expr="os.write(1, b'mine-%d\\n')" % i) == {"value": 7}
            assert _output(transport, backend, c.last_call) == "mine-%d\n" % i
    finally:
        c.close()


def test_user_code_that_detaches_stdout_does_not_break_the_server(client):
    answer = client.request("exec", code="import sys\nsys.stdout.detach()\nNone")
    assert answer.get("value") is None and "error" not in answer, answer
    assert client.request("exec", code="print('again')")["stdout"] == "again\n"
    assert client.request("exec", code="print('and again')")["stdout"] == "and again\n"


def test_the_calls_of_a_session_whose_lease_ran_out_are_gone(backend, transport):
    c = backend.client()
    session = "gone-%s-%d" % (transport, time.monotonic_ns())
    try:
        assert c.request("eval", expr="1", session=session) == {"value": 1}
        cid = c.last_call
        assert c.request("exec", code="x = 2", session=session)["value"] is None
        assert c.request("lease", session=session, seconds=0.3) == {"value": True}
        assert cid in _rows(c, all=True)
        assert wait_for(lambda: all(r["session"] != session for r in _rows(c, all=True).values()), timeout=5)
        end = list(attach(transport, backend.address, backend.token, cid))[-1]
        if transport == "grpc":
            assert end["status"] == "NOT_FOUND"
        else:
            assert end["body"]["error"]["type"] == "UnknownCall"
        # A new call of that name is listed again.
        assert c.request("eval", expr="3", session=session) == {"value": 3}
        assert c.last_call in _rows(c, all=True)
    finally:
        c.close()
