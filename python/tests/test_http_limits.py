"""The HTTP transport holds off slow, silent and too many clients (real sockets, short limits)."""

import json
import os
import select
import socket
import time

import pytest
from backend_clients import Backend, backend_env, wait_for


def start(**limits):
    env = backend_env(None, **{"BEEP_BACKEND_" + k.upper(): str(v) for k, v in limits.items()})
    b = Backend("http", token_stdin=True, env=env)
    assert b.event["event"] == "ready", (b.event, b.stderr_lines)
    return b


def connect(b, timeout=10.0):
    host, port = b.address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def request_bytes(b, expr="6*7", scheme="Bearer", close=False):
    body = json.dumps({"expr": expr}).encode()
    return (
        "POST /v1/eval HTTP/1.1\r\nHost: %s\r\nAuthorization: %s %s\r\nContent-Length: %d\r\n%s\r\n"
        % (b.address, scheme, b.token, len(body), "Connection: close\r\n" if close else "")
    ).encode() + body


def read_responses(s, n, closed_ok=False):
    """n responses read off `s` (several may come in one read): `[(status, body), ...]`; fewer
    only with `closed_ok`, when the server closed before sending a whole head."""
    data, out = b"", []
    while len(out) < n:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end]
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            end = head_end + 4 + length
            if len(data) >= end:
                body = json.loads(data[head_end + 4 : end])
                body.pop("call", None)  # a live call's id and end seq: not what these tests are about
                body.pop("seq", None)
                out.append((int(head.split(b" ")[1]), body))
                data = data[end:]
                continue
        chunk = s.recv(65536)
        if not chunk:
            assert head_end < 0, "closed inside a body"
            assert closed_ok, "closed after %d answers" % len(out)
            return out
        data += chunk
    assert data == b"", "more than %d answers" % n
    return out


def read_response(s):
    """One response: `(status, body)`; None if the server closed before sending one."""
    got = read_responses(s, 1, closed_ok=True)
    return got[0] if got else None


def closed_by_server(s):
    """Read until the server closes; what it sent."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line.split()[1] for line in f if line.startswith("Threads:")))


def test_slow_loris_is_answered_408_and_closed_at_the_header_deadline():
    b = start(header_timeout=1)
    try:
        head = request_bytes(b)
        s = connect(b)
        began = time.monotonic()
        sent = 0
        answered = False
        while time.monotonic() - began < 5 and sent < len(head):
            s.sendall(head[sent : sent + 1])  # a byte at a time: the head never completes in time
            sent += 1
            answered = bool(select.select([s], [], [], 0.1)[0])
            if answered:
                break
        took = time.monotonic() - began
        assert answered and sent < len(head), "the slow client was kept"
        assert 0.9 < took < 2.0, took
        status, body = read_response(s)
        assert status == 408 and body["error"]["type"] == "RequestTimeout", body
        assert closed_by_server(s) == b""
        s.close()
        # The server still serves everyone else.
        s = connect(b)
        s.sendall(request_bytes(b))
        assert read_response(s) == (200, {"value": 42})
        s.close()
    finally:
        b.stop()


def test_silent_connection_is_closed_at_the_header_deadline():
    b = start(header_timeout=0.5)
    try:
        s = connect(b)
        began = time.monotonic()
        data = closed_by_server(s)
        took = time.monotonic() - began
        assert 0.4 < took < 1.5, took
        assert data.startswith(b"HTTP/1.1 408 "), data
        s.close()
    finally:
        b.stop()


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout():
    b = start(header_timeout=0.5, idle_timeout=1.5)
    try:
        s = connect(b)
        s.sendall(request_bytes(b))
        assert read_response(s) == (200, {"value": 42})
        # Idle longer than the header deadline but shorter than the idle timeout: still open.
        time.sleep(0.8)
        s.sendall(request_bytes(b, expr="1+1"))
        assert read_response(s) == (200, {"value": 2})
        began = time.monotonic()
        assert closed_by_server(s) == b"", "idle connections are closed quietly"
        took = time.monotonic() - began
        assert 1.3 < took < 2.5, took
        s.close()
    finally:
        b.stop()


def test_the_idle_timeout_counts_from_the_last_answer():
    """Between requests the server first waits one header deadline without reading the clock;
    the idle timeout still counts from the last answer, and a head begun after an idle while
    has the header deadline from its first byte."""
    b = start(header_timeout=1, idle_timeout=1.5)
    try:
        s = connect(b)
        s.sendall(request_bytes(b))
        assert read_response(s) == (200, {"value": 42})
        began = time.monotonic()
        assert closed_by_server(s) == b""
        took = time.monotonic() - began
        assert 1.3 < took < 2.2, took  # 2.5 if the first wait were not counted
        s.close()

        s = connect(b)
        s.sendall(request_bytes(b))
        assert read_response(s) == (200, {"value": 42})
        time.sleep(1.2)  # past the first wait
        head = request_bytes(b, expr="2+3")
        s.sendall(head[:20])
        time.sleep(0.6)  # the idle timeout passes while the head is begun: not closed
        s.sendall(head[20:])
        assert read_response(s) == (200, {"value": 5})
        # A head begun and never finished: 408 one header deadline after its first byte.
        s.sendall(head[:20])
        began = time.monotonic()
        data = closed_by_server(s)
        took = time.monotonic() - began
        assert data.startswith(b"HTTP/1.1 408 "), data
        assert 0.9 < took < 1.8, took
        s.close()
    finally:
        b.stop()


def test_pipelined_and_split_requests_are_answered_in_order():
    """Several requests in one write, and one request in pieces (inside its head, inside its
    body): each answered once, in order, on one connection."""
    b = start()
    try:
        s = connect(b)
        s.sendall(b"".join(request_bytes(b, expr="%d*2" % k) for k in range(1, 4)))
        assert read_responses(s, 3) == [(200, {"value": 2 * k}) for k in (1, 2, 3)]
        for cut in (5, 40, -3):  # in the request line, in the headers, in the body
            data = request_bytes(b, expr="40+2")
            s.sendall(data[:cut])
            time.sleep(0.15)
            s.sendall(data[cut:])
            assert read_responses(s, 1) == [(200, {"value": 42})]
        # Two requests where the first write ends inside the second one's head.
        first, second = request_bytes(b, expr="1+1"), request_bytes(b, expr="2+2")
        s.sendall(first + second[:12])
        time.sleep(0.15)
        s.sendall(second[12:])
        assert read_responses(s, 2) == [(200, {"value": 2}), (200, {"value": 4})]
        s.close()
    finally:
        b.stop()


def test_a_long_call_is_not_cut_by_the_header_deadline():
    b = start(header_timeout=0.3)
    try:
        s = connect(b)
        body = json.dumps({"code": "import time; time.sleep(1); 5"}).encode()
        s.sendall(
            b"POST /v1/exec HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
            % (b.address.encode(), b.token.encode(), len(body), body)
        )
        status, answer = read_response(s)
        assert status == 200 and answer["value"] == 5, answer
        s.close()
    finally:
        b.stop()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="counts threads in /proc")
def test_connections_over_the_cap_get_503_without_a_thread():
    """At the cap with connections that all sent a request with the token: 503."""
    b = start(max_connections=4, header_timeout=30)
    try:
        base = threads_of(b.proc.pid)
        held = [connect(b) for _ in range(4)]
        for s in held:
            s.sendall(request_bytes(b))
            assert read_response(s) == (200, {"value": 42})
        wait_for(lambda: threads_of(b.proc.pid) == base + 4)
        for _ in range(50):
            s = connect(b)
            status, body = read_response(s)
            assert status == 503 and body["error"]["type"] == "Unavailable", body
            assert "at most 4" in body["error"]["message"]
            assert closed_by_server(s) == b""
            s.close()
        assert threads_of(b.proc.pid) == base + 4
        # A client that sent its request at once also reads the 503.
        s = connect(b)
        s.sendall(request_bytes(b))
        assert read_response(s)[0] == 503
        s.close()
        # The held connections are served; once they close, new ones are taken again.
        held[0].sendall(request_bytes(b))
        assert read_response(held[0]) == (200, {"value": 42})
        for s in held:
            s.close()
        wait_for(lambda: threads_of(b.proc.pid) == base)
        s = connect(b)
        s.sendall(request_bytes(b, close=True))
        assert read_response(s) == (200, {"value": 42})
        s.close()
    finally:
        b.stop()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="counts threads in /proc")
def test_connections_without_the_token_keep_no_one_out():
    """Whoever holds connections open without the token (another local user: no token) is
    closed, oldest first, for a new connection; connections that sent the token stay."""
    b = start(max_connections=4, header_timeout=30)
    try:
        base = threads_of(b.proc.pid)
        proven = connect(b)
        proven.sendall(request_bytes(b))
        assert read_response(proven) == (200, {"value": 42})
        wrong = connect(b)  # a request with a wrong token does not count
        wrong.sendall(request_bytes(b).replace(b.token.encode(), b"x" * len(b.token)))
        assert read_response(wrong)[0] == 401
        idle = [connect(b) for _ in range(2)]  # silent
        wait_for(lambda: threads_of(b.proc.pid) == base + 4)
        # A client with the token gets in; the oldest connection without one is closed.
        s = connect(b)
        s.sendall(request_bytes(b, expr="2+3"))
        assert read_response(s) == (200, {"value": 5})
        assert closed_by_server(wrong) == b""
        # A flood of silent connections: each takes the place of an older silent one.
        flood = [connect(b) for _ in range(50)]
        for c in idle + flood[:-2]:
            assert closed_by_server(c) == b"", "an older silent connection was kept"
        wait_for(lambda: threads_of(b.proc.pid) == base + 4)
        # The connections that sent the token were never closed, and are served.
        for c, expr, value in ((proven, "1+1", 2), (s, "3*3", 9)):
            c.sendall(request_bytes(b, expr=expr))
            assert read_response(c) == (200, {"value": value})
        # All four with the token: now a new connection is refused.
        for c in flood[-2:]:
            c.sendall(request_bytes(b))
            assert read_response(c) == (200, {"value": 42})
        late = connect(b)
        assert read_response(late)[0] == 503
        for c in [proven, wrong, s, late, *idle, *flood]:
            c.close()
    finally:
        b.stop()


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_http_bearer_scheme_is_case_insensitive(scheme):
    b = start()
    try:
        s = connect(b)
        s.sendall(request_bytes(b, scheme=scheme))
        assert read_response(s) == (200, {"value": 42})
        s.close()
        s = connect(b)
        wrong = request_bytes(b, scheme=scheme).replace(b.token.encode(), b.token.upper().encode())
        s.sendall(wrong)  # the token itself is case-sensitive
        assert read_response(s)[0] == 401
        s.close()
    finally:
        b.stop()


def test_a_big_answer_reaches_a_slow_reader_whole():
    """An answer bigger than the socket's buffer, to a client that reads it late: the first
    write takes what fits, the rest follows when the client reads; the connection goes on."""
    b = start()
    try:
        with connect(b) as s:
            for k in range(3):
                s.sendall(request_bytes(b, expr="'%d' * 6_000_000" % k))
                time.sleep(0.2)  # the server fills the socket's buffer and waits
                assert read_response(s) == (200, {"value": str(k) * 6_000_000})
                s.sendall(request_bytes(b, expr="2 + %d" % k))
                assert read_response(s) == (200, {"value": 2 + k})
    finally:
        b.stop()
