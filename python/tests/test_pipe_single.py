"""The pipe server blocks in `recv` while it has one connection; everything else must still work."""

import json
import os
import signal
import time

from backend_clients import Backend
from live_clients import attach


def test_pipe_clients_come_and_go_while_one_idles():
    b = Backend("pipe")
    try:
        first = b.client()
        assert first.request("eval", expr="1+1") == {"value": 2}
        for round_ in range(20):
            t = time.monotonic()
            other = b.client()  # the auth answer needs the main thread to notice the new client
            assert other.request("eval", expr="%d * 2" % round_) == {"value": round_ * 2}
            assert time.monotonic() - t < 2.0
            assert first.request("eval", expr="1+1") == {"value": 2}
            other.close()
            assert first.request("eval", expr="2+2") == {"value": 4}  # alone again
        # Frames split over several sends, while alone.
        data = b'{"id": 9, "op": "eval", "expr": "3+3"}'
        frame = len(data).to_bytes(4, "big") + data
        for cut in (1, 3, 4, 10):
            first.sock.sendall(frame[:cut])
            time.sleep(0.01)
            first.sock.sendall(frame[cut:])
            assert first.recv_frame() == {"id": 9, "value": 6}
        # A shutdown from a second client while the first idles: the server stops promptly.
        t = time.monotonic()
        assert b.client().request("shutdown") == {"value": True}
        b.proc.wait(5)
        assert time.monotonic() - t < 3.0
        assert b.proc.returncode == 0
    finally:
        b.stop()


def test_pipe_answers_info_during_each_long_call():
    """Every long call hands the sockets to the watcher within 50 ms, also the second in a row
    and one after an idle pause (the long-call tick stops when idle and restarts with a call)."""
    b = Backend("pipe")
    try:
        runner, other = b.client(), b.client()
        for pause in (0, 0, 0.3):
            time.sleep(pause)
            for _ in range(50):  # short calls first: the tick is running when the long call starts
                assert runner.request("eval", expr="1") == {"value": 1}
            t = time.monotonic()
            runner.send_frame({"id": 1, "op": "exec", "code": "import time; time.sleep(0.8)"})
            time.sleep(0.1)
            assert other.request("info")["value"]["transport"] == "pipe"
            assert time.monotonic() - t < 0.5, "info waited for the long call"
            assert runner.recv_frame()["id"] == 1
            assert time.monotonic() - t >= 0.8
        # A call on the other connection, queued during a long call, runs after it in order.
        runner.send_frame({"id": 2, "op": "exec", "code": "import time; time.sleep(0.3); x = 1"})
        time.sleep(0.1)
        assert other.request("eval", expr="x") == {"value": 1}
        assert runner.recv_frame() == {"id": 2, "stdout": "", "stderr": "", "value": None}
    finally:
        b.stop()


def test_pipe_plain_calls_on_the_only_connection_answer_exact_bytes_and_are_journaled():
    """The only connection's hot path (read into the server's buffer, the answer sent before
    the call's record goes into the journal): answers byte for byte as the encoder makes them,
    server call ids counting up across their batches (c99, c100, ..., c200), each call listed
    and attachable right after its answer, and a frame bigger than the read buffer."""
    b = Backend("pipe")
    try:
        c = b.client()
        c.strip_live = False
        for k in range(1, 261):
            data = b'{"id": %d, "op": "eval", "expr": "%d * 2"}' % (k, k)
            c.sock.sendall(len(data).to_bytes(4, "big") + data)
            want = b'{"id":%d,"value":%d,"call":"c%d","seq":1}' % (k, 2 * k, k)
            got = b""
            while len(got) < 4 + len(want):
                chunk = c.sock.recv(65536)
                assert chunk, "the server closed the connection"
                got += chunk
            assert got == len(want).to_bytes(4, "big") + want
            if k in (1, 99, 100, 200, 260):
                rows = {r["call"]: r for r in c.request("calls")["value"]}
                assert rows["c%d" % k]["state"] == "done" and rows["c%d" % k]["duration"] >= 0
        rows = c.request("calls")["value"]
        assert [r["call"] for r in rows][-3:] == ["c258", "c259", "c260"]
        events = list(attach("pipe", b.address, b.token, "c260"))
        assert [e["body"] for e in events] == [{"value": 520, "call": "c260", "seq": 1}]
        big = "x" * 100_000  # a frame over the 64 KiB read buffer: read on in pieces
        assert c.request("eval", expr="len(%r)" % big)["value"] == 100_000
        assert c.request("eval", expr="7")["value"] == 7
    finally:
        b.stop()


def test_pipe_a_long_plain_call_is_attachable_right_after_its_answer():
    """A long plain call on the only connection: the watcher serves a second client meanwhile;
    that client attaches to the call as soon as the first has its answer, and finds its end."""
    b = Backend("pipe")
    try:
        runner = b.client()
        runner.strip_live = False
        assert runner.request("eval", expr="1")["value"] == 1  # the only connection: blocks in recv
        for k in range(3):
            runner.send_frame({"id": 10 + k, "op": "eval", "expr": "__import__('time').sleep(0.3) or %d" % k})
            time.sleep(0.1)
            other = b.client()  # accepted by the watcher while the call runs
            other.strip_live = False
            answer = runner.recv_frame()
            assert answer["id"] == 10 + k and answer["value"] == k and answer["seq"] == 1
            rows = {r["call"]: r for r in other.request("calls")["value"]}
            assert rows[answer["call"]]["state"] == "done"
            events = list(attach("pipe", b.address, b.token, answer["call"]))
            assert [e["body"]["value"] for e in events] == [k]
            other.close()
    finally:
        b.stop()


def test_pipe_only_connection_answers_every_kind_of_request_as_the_encoder_does():
    """The only connection's inline path (it parses, runs plain calls and formats their answers
    itself): every answer byte for byte what the general encoder makes of `{"id": id, **body}`,
    for ids and values of every kind; requests it does not take (not an object, an op that is
    not a string, a streamed call, trailing data) take the general way; server call ids count
    up by one per call, failed ones included."""
    b = Backend("pipe")
    try:
        c = b.client()
        c.strip_live = False
        assert c.request("eval", expr="1")["call"] == "c1"
        expect_n = 2

        def raw(data):
            c.sock.sendall(len(data).to_bytes(4, "big") + data)
            got = b""
            while len(got) < 4 or len(got) < 4 + int.from_bytes(got[:4], "big"):
                chunk = c.sock.recv(65536)
                assert chunk, "the server closed the connection"
                got += chunk
            size = int.from_bytes(got[:4], "big")
            assert len(got) == 4 + size, "one answer, nothing more"
            return got[4:]

        cases = [  # (request id as JSON, expr, the id and value in the answer)
            (b"7", "3 * 4", 7, 12),
            (b"-3", "-5", -3, -5),
            (b"0", "10**3999", 0, 10**3999),
            (b'"a-1"', "2", "a-1", 2),
            (b'"\\u00e9"', "2", "\u00e9", 2),
            (b"true", "2", None, 2),
            (b"1.5", "2", None, 2),
            (b"null", "2", None, 2),
            (b"[1]", "2", None, 2),
            (b"8", "True", 8, True),
            (b"9", "None", 9, None),
            (b"10", "'caf\u00e9 \\n'", 10, "caf\u00e9 \n"),
            (b"11", "2.5", 11, 2.5),
            (b"12", "[1, {'a': None}]", 12, [1, {"a": None}]),
        ]
        for rid_json, expr, rid, value in cases:
            got = raw(b'{"id":%s,"op":"eval","expr":%s}' % (rid_json, json.dumps(expr).encode()))
            answer = {"id": rid, "value": value, "call": "c%d" % expect_n, "seq": 1}
            assert got == json.dumps(answer, separators=(",", ":")).encode(), (rid_json, expr, got)
            expect_n += 1
        got = json.loads(raw(b'{"id": 13, "op": "eval", "expr": "1/0"}'))
        assert got["error"]["type"] == "ZeroDivisionError" and got["call"] == "c%d" % expect_n
        expect_n += 1
        got = raw(b'{"id":14}')
        assert json.loads(got)["error"]["type"] == "BadRequest"
        # Not taken inline: the general way answers, the connection goes on.
        for data in (
            b'[{"op": "eval", "expr": "1"}]',
            b'{"id": 15, "op": ["eval"], "expr": "1"}',
            b'{"id": 16, "op": {"a": 1}, "expr": "1"}',
            b'{"id": 17, "op": "eval", "expr": "1"} x',
            b'{"id": 18, "op": "eval", "expr": "1", "stream": 1}',
        ):
            assert json.loads(raw(data))["error"]["type"] == "BadRequest", data
        assert json.loads(raw(b'{"id": 19, "op": "info"}'))["value"]["transport"] == "pipe"
        got = json.loads(raw(b' {"id": 20, "op": "eval", "expr": "6 * 7"}'))
        assert got == {"id": 20, "value": 42, "call": "c%d" % expect_n, "seq": 1}
        expect_n += 1
        c.send_frame({"id": 21, "op": "eval", "expr": "print('out') or 5", "stream": True})
        frames = [c.recv_frame(), c.recv_frame()]
        assert frames[0]["event"] == "output" and frames[0]["data"] == "out\n"
        assert frames[1] == {"id": 21, "value": 5, "call": "c%d" % expect_n, "seq": 2}
        expect_n += 1
        got = json.loads(raw(b'{"id": 22, "op": "eval", "expr": "print(\'x\') or 6"}'))
        assert got == {"id": 22, "value": 6, "call": "c%d" % expect_n, "seq": 2}  # its output: an event
        expect_n += 1
        assert c.request("eval", expr="1")["call"] == "c%d" % expect_n
    finally:
        b.stop()


def test_pipe_only_connection_sends_a_big_answer_whole_to_a_slow_reader():
    """A big answer on the only connection to a client that reads it late: the server's write
    blocks; a signal that lands in it (the long-call tick's SIGALRM, sent here) cuts it short,
    the rest follows, the frame arrives whole and the connection goes on."""
    b = Backend("pipe")
    try:
        c = b.client()
        for k in range(3):
            assert c.request("eval", expr="1")["value"] == 1
            c.send_frame({"id": 50 + k, "op": "eval", "expr": "'%d' * 6_000_000" % k})
            time.sleep(0.15)  # the server fills the socket's buffer and waits in its write
            os.kill(b.proc.pid, signal.SIGALRM)
            time.sleep(0.05)
            answer = c.recv_frame()
            assert answer["id"] == 50 + k and answer["value"] == str(k) * 6_000_000
            assert c.buf == b""
            assert c.request("eval", expr="2 + %d" % k)["value"] == 2 + k
    finally:
        b.stop()
