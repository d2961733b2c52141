"""Live calls: output arrives while the call runs, and a client that died reattaches without
losing or repeating a line (each transport; the killed client is a real process)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from backend_clients import TRANSPORTS
from live_clients import attach, open_sse, sse_events, stream

HERE = os.path.dirname(os.path.abspath(__file__))
TICKER = (
    "import time\n"
    "for i in range(30):\n"
    "    print('line', i, repr(time.time()), flush=True)\n"
    "    time.sleep(0.1)\n"
    "'finished'\n"
)


def lines_of(events):
    text = "".join(e["data"] for e in events if e["event"] == "output" and e["stream"] == "stdout")
    return text.splitlines()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_output_streams_live_and_a_new_client_reattaches_exactly_once(backends, transport):
    backend = backends(transport)
    call = "ticker-%s-%d" % (transport, os.getpid())
    reader = subprocess.Popen(
        [
            sys.executable,
            os.path.join(HERE, "live_clients.py"),
            transport,
            backend.address,
            backend.token,
            "stream",
            json.dumps({"op": "exec", "fields": {"code": TICKER, "call": call}}),
        ],
        stdout=subprocess.PIPE,
    )
    got = []
    try:
        while len(lines_of(got)) < 8:
            line = reader.stdout.readline()
            assert line, "the streaming client ended early"
            got.append(json.loads(line))
    finally:
        reader.send_signal(signal.SIGKILL)  # the client dies mid-call
        reader.wait(5)
        reader.stdout.close()
    # The first line reached the client within 300 ms of being printed, every line while the
    # call ran.
    first = next(e for e in got if e["event"] == "output")
    assert first["call"] == call and first["seq"] == 1
    printed = float(lines_of([first])[0].split()[2])
    assert first["t"] - printed < 0.3, first["t"] - printed
    for e in got:
        if e["event"] == "output":
            for line in lines_of([e]):
                assert e["t"] - float(line.split()[2]) < 1.0, (line, e["t"])  # live, not at the end
    seqs = [e["seq"] for e in got]
    assert seqs == list(range(1, len(seqs) + 1))

    time.sleep(1.0)
    rest = list(attach(transport, backend.address, backend.token, call, after=seqs[-1]))
    end = rest.pop()
    assert end["event"] == "end", end
    assert end["body"]["value"] == "finished" and end["body"]["call"] == call
    assert [e["seq"] for e in rest] == list(range(seqs[-1] + 1, seqs[-1] + 1 + len(rest)))
    assert end["body"]["seq"] == seqs[-1] + len(rest) + 1
    lines = lines_of(got) + lines_of(rest)
    assert [int(line.split()[1]) for line in lines] == list(range(30))
    # Attaching from the start replays the whole journal the same way.
    again = list(attach(transport, backend.address, backend.token, call))
    assert lines_of(again[:-1]) == lines
    assert again[-1]["body"] == end["body"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_streamed_answer_keeps_the_unstreamed_fields(backends, transport):
    backend = backends(transport)
    events = list(
        stream(
            transport,
            backend.address,
            backend.token,
            "exec",
            {"code": "import sys\nprint('o')\nsys.stderr.write('e\\n')\n1/0"},
        )
    )
    end = events.pop()["body"]
    assert end["error"]["type"] == "ZeroDivisionError"
    assert end["stdout"] == "" and end["stderr"] == ""  # the output came as events
    assert {(e["stream"], e["data"]) for e in events} == {("stdout", "o\n"), ("stderr", "e\n")}
    assert end["seq"] == len(events) + 1
    if transport != "grpc":  # eval streams too (gRPC: EvalStream)
        events = list(stream(transport, backend.address, backend.token, "eval", {"expr": "print('x') or 5"}))
    else:
        events = list(stream(transport, backend.address, backend.token, "eval", {"expr": "print('x') or 5"}))
    assert events[-1]["body"]["value"] == 5
    assert lines_of(events[:-1]) == ["x"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_taken_call_id_is_refused_and_nothing_runs(backends, transport):
    backend = backends(transport)
    c = backend.client()
    try:
        cid = "dup-%s" % transport
        c.request("exec", code="hits = globals().get('hits', 0) + 1", call=cid)
        assert c.last_call == cid
        end = list(
            stream(transport, backend.address, backend.token, "exec", {"code": "hits += 1", "call": cid})
        )[-1]
        if transport == "grpc":
            assert end["status"] == "ALREADY_EXISTS"
        else:
            assert end["body"]["error"]["type"] == "CallExists"
            assert "call" not in end["body"]
        if transport == "http":
            assert end["status"] == 409
        assert c.request("eval", expr="hits") == {"value": 1}
        if transport != "grpc":
            bad = c.request("eval", expr="1", call="no spaces")
            assert bad["error"]["type"] == "BadRequest"
    finally:
        c.close()


def test_http_sse_plain_reader_and_last_event_id(backends):
    """A plain SSE reader (no client library): event/id/data lines; `Last-Event-ID` resumes."""
    backend = backends("http")
    code = "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.06)\n7"
    status, head, sock, rest = open_sse(
        backend.address,
        backend.token,
        "POST",
        "/v1/exec",
        json.dumps({"code": code, "call": "sse-1"}).encode(),
    )
    try:
        assert status == 200
        assert b"Content-Type: text/event-stream" in head
        seen = list(sse_events(sock, rest))
    finally:
        sock.close()
    kinds = [k for k, _, _ in seen]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"output"}
    assert [i for _, i, _ in seen[:-1]] == [d["seq"] for _, _, d in seen[:-1]]
    assert seen[-1][2]["value"] == 7 and seen[-1][2]["call"] == "sse-1"
    status, head, sock, rest = open_sse(
        backend.address, backend.token, "GET", "/v1/calls/sse-1/events", b"", headers=["Last-Event-ID: 2"]
    )
    try:
        replay = list(sse_events(sock, rest))
    finally:
        sock.close()
    assert [i for _, i, _ in replay[:-1]] == [i for _, i, _ in seen[:-1] if i > 2]
    # Unknown call: a plain 404.
    status, head, sock, rest = open_sse(backend.address, backend.token, "GET", "/v1/calls/nope/events", b"")
    sock.close()
    assert status == 404
    # Without the Accept header, exec answers as before.
    c = backend.client()
    try:
        answer = c.request("exec", code="print('plain')\n3")
        assert answer == {"stdout": "plain\n", "stderr": "", "value": 3}
    finally:
        c.close()


def test_pipe_other_requests_work_while_a_stream_is_open(backends):
    backend = backends("pipe")
    from backend_clients import PipeClient

    c = PipeClient(backend.address, backend.token)
    c.strip_live = False
    try:
        c.send_frame(
            {
                "id": 1,
                "op": "exec",
                "stream": True,
                "code": "import time\nprint('a', flush=True)\ntime.sleep(0.5)\nprint('b')",
            }
        )
        first = c.recv_frame()
        assert first["id"] == 1 and first["event"] == "output" and first["data"] == "a\n"
        c.send_frame({"id": 2, "op": "calls"})
        answer = c.recv_frame()
        assert answer["id"] == 2
        row = next(r for r in answer["value"] if r["call"] == first["call"])
        assert row["state"] == "running" and row["duration"] is None
        frames = []
        while True:
            f = c.recv_frame()
            frames.append(f)
            if "event" not in f:
                break
        assert frames[-1]["id"] == 1 and frames[-1]["call"] == first["call"]
        assert "".join(f["data"] for f in frames[:-1]) == "b\n"
    finally:
        c.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_fast_printing_call_delivers_every_line_before_its_end(backends, transport):
    """The end never overtakes output the flusher thread is turning into events."""
    backend = backends(transport)
    for _ in range(3):
        events = list(
            stream(
                transport,
                backend.address,
                backend.token,
                "exec",
                {"code": "for i in range(50000):\n    print(i)"},
            )
        )
        end = events.pop()
        assert [e["event"] for e in events] == ["output"] * len(events)
        assert [int(x) for x in lines_of(events)] == list(range(50000))
        assert end["body"]["seq"] == len(events) + 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_to_an_unknown_call_is_refused(backends, transport):
    backend = backends(transport)
    end = list(attach(transport, backend.address, backend.token, "never-was"))[-1]
    if transport == "grpc":
        assert end["status"] == "NOT_FOUND"
    else:
        assert end["body"]["error"]["type"] == "UnknownCall"
    if transport == "http":
        assert end["status"] == 404


def test_a_bad_after_is_refused_with_its_name_and_nothing_is_lost(backends):
    """`after` that is not an integer >= 0 (query, `Last-Event-ID`, an `attach` request): a
    400 naming `after`; the call's journal is untouched and replays whole afterwards."""
    http, pipe = backends("http"), backends("pipe")
    for backend in (http, pipe):
        c = backend.client()
        try:
            assert c.request("exec", code="print('kept')\n5", call="bad-after")["value"] == 5
            for after in (-1, "3", 1.5, True):
                answer = c.request("attach", call="bad-after", after=after)
                assert answer["error"]["type"] == "BadRequest", (after, answer)
                assert "`after`" in answer["error"]["message"], answer
        finally:
            c.close()
    for query, headers in (("?after=abc", ()), ("?after=-2", ()), ("", ["Last-Event-ID: x1"])):
        status, _, sock, rest = open_sse(
            http.address, http.token, "GET", "/v1/calls/bad-after/events" + query, b"", headers=headers
        )
        sock.settimeout(5)
        while rest.count(b"}") < 2:  # the error body
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        sock.close()
        assert status == 400, (query, headers, status)
        assert json.loads(rest)["error"]["message"] == "`after` must be an integer >= 0"
    # Nothing lost: the whole journal replays.
    events = list(attach("http", http.address, http.token, "bad-after"))
    assert [e["data"] for e in events[:-1]] == ["kept\n"]
    assert events[-1]["body"]["value"] == 5
