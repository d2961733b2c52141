"""Bad tokens, bad headers, bad frames: refused cleanly, the server keeps serving, nothing runs.

"Nothing ran" is shown with a marker file: every refused request carries code that would
create it, and the file is absent afterwards.
"""

import json
import os
import secrets
import socket
import stat
import time

import pytest
from backend_clients import Backend, HttpClient, PipeClient, backend_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "ran"
    yield path
    assert not path.exists(), "a refused request ran code"


def marker_code(path):
    return "open(%r, 'w').write('ran')" % str(path)


def raw_http(address, data, timeout=5.0):
    """Send raw bytes, half-close, read everything until the server closes."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def http_request(b, path="/v1/exec", body=b"{}", headers=None, token="default"):
    h = {"Host": b.address, "Content-Length": str(len(body))}
    if token == "default":
        token = b.token
    if token is not None:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    head = "POST %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None)
    return raw_http(b.address, head.encode() + b"\r\n" + body)


def status_and_body(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body)


def assert_serving(b):
    c = b.client()
    assert c.request("eval", expr="6*7") == {"value": 42}
    c.close()


# ---- HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_backend():
    b = Backend("http", args=["--max-body", "4096"])
    assert b.event["event"] == "ready"
    yield b
    b.stop()


@pytest.mark.parametrize(
    ("headers", "token", "status", "kind"),
    [
        ({}, "wrong", 401, "Unauthorized"),
        ({}, None, 401, "Unauthorized"),
        ({"Host": "evil.example:80"}, "default", 403, "Forbidden"),
        ({"Host": "127.0.0.1:1"}, "default", 403, "Forbidden"),
        ({"Host": None}, "default", 403, "Forbidden"),
        ({"Origin": "http://127.0.0.1"}, "default", 403, "Forbidden"),
        ({"Origin": "null"}, "default", 403, "Forbidden"),
    ],
)
def test_http_refuses(http_backend, marker, headers, token, status, kind):
    body = json.dumps({"code": marker_code(marker)}).encode()
    got_status, got = status_and_body(http_request(http_backend, body=body, headers=headers, token=token))
    assert got_status == status
    assert got["error"]["type"] == kind
    assert set(got["error"]) == {"type", "message", "traceback"}
    assert_serving(http_backend)


def test_http_health_needs_token(http_backend):
    c = HttpClient(http_backend.address, "wrong")
    assert c.raw("GET", "/v1/health")[0] == 401
    c = http_backend.client()
    assert c.raw("GET", "/v1/health") == (200, {"value": {"status": "ok", "busy": False}})


def test_http_oversized_body(http_backend, marker):
    code = marker_code(marker) + "  # " + "x" * 5000
    status, body = status_and_body(http_request(http_backend, body=json.dumps({"code": code}).encode()))
    assert (status, body["error"]["type"]) == (413, "PayloadTooLarge")
    # a huge declared length is refused before any of it is read
    raw = raw_http(
        http_backend.address,
        b"POST /v1/exec HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
        b"Content-Length: 2147483648\r\n\r\n{" % (http_backend.address.encode(), http_backend.token.encode()),
    )
    assert status_and_body(raw)[0] == 413
    assert_serving(http_backend)


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [
        ("/v1/exec", b"{not json", 400, "BadRequest"),
        ("/v1/exec", b"\xff\xfe", 400, "BadRequest"),
        ("/v1/exec", b"[1, 2]", 400, "BadRequest"),
        ("/v1/exec", b"[" * 4000, 400, "BadRequest"),
        ("/v1/exec", b"[" * 5000, 413, "PayloadTooLarge"),
        ("/v1/exec", b"{}", 400, "BadRequest"),
        ("/v1/exec", b'{"code": 5}', 400, "BadRequest"),
        ("/v1/call", b'{"handle": "h1"}', 400, "BadRequest"),
        ("/v1/nope", b"{}", 404, "UnknownOperation"),
        ("/v2/exec", b"{}", 404, "NotFound"),
    ],
)
def test_http_bad_requests(http_backend, path, body, status, kind):
    if len(body) > 4096:
        got_status, got = status_and_body(http_request(http_backend, path=path, body=body))
        assert (got_status, got["error"]["type"]) == (status, kind)
        return
    c = http_backend.client()
    got_status, got = c.raw("POST", path, body)
    assert (got_status, got["error"]["type"]) == (status, kind)
    # the same keep-alive connection still works
    assert c.request("eval", expr="1") == {"value": 1}
    c.close()


def test_http_wrong_method_and_chunked(http_backend):
    c = http_backend.client()
    assert c.raw("GET", "/v1/eval")[0] == 405
    raw = raw_http(
        http_backend.address,
        b"POST /v1/eval HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        % (http_backend.address.encode(), http_backend.token.encode()),
    )
    assert status_and_body(raw)[0] == 411
    assert_serving(http_backend)


def test_http_user_error_status(http_backend):
    c = http_backend.client()
    status, body = c.raw("POST", "/v1/eval", b'{"expr": "1/0"}')
    assert status == 422 and body["error"]["type"] == "ZeroDivisionError"
    status, body = c.raw("POST", "/v1/exec", b'{"code": "import time; time.sleep(5)", "timeout": 0.2}')
    assert status == 408 and body["error"]["type"] == "TimeoutError"
    status, body = c.raw("POST", "/v1/getattr", b'{"handle": "h999999", "name": "x"}')
    assert status == 422 and body["error"]["type"] == "UnknownHandle"


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.binary(max_size=300),
    prefix=st.sampled_from([b"", b"POST /v1/exec HTTP/1.1\r\n", b"GET / HTTP/1.1\r\n"]),
)
def test_http_fuzz(http_backend, data, prefix):
    raw = raw_http(http_backend.address, prefix + data)
    if raw:
        assert raw.startswith(b"HTTP/1.1 4"), raw[:100]


def test_http_fuzz_left_server_serving(http_backend, marker):
    assert_serving(http_backend)
    assert http_backend.alive()


# ---- pipe -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipe_backend():
    b = Backend("pipe", args=["--max-body", "4096"])
    assert b.event["event"] == "ready"
    yield b
    b.stop()


def test_pipe_connection_without_auth_is_closed_after_the_deadline():
    token = secrets.token_hex(32)
    b = Backend("pipe", token=token, env=backend_env(token, BEEP_BACKEND_AUTH_TIMEOUT="0.5"))
    try:
        silent = PipeClient(b.address, "", auth=False)
        late = PipeClient(b.address, b.token)  # authenticates at once: never expired
        started = time.monotonic()
        time.sleep(0.2)
        second = PipeClient(b.address, "", auth=False)
        for conn in (silent, second):
            answer = conn.recv_frame()
            assert answer["id"] is None and answer["error"]["type"] == "Unauthorized", answer
            assert "no auth frame within 0.5 s" in answer["error"]["message"]
            assert conn.recv_frame() is None  # then the end of the stream
        assert 0.6 < time.monotonic() - started < 5
        time.sleep(0.3)
        assert late.roundtrip({"id": 1, "op": "eval", "expr": "6*7"}) == {"id": 1, "value": 42}
        assert b.alive()
    finally:
        b.stop()


def exec_frame(marker, rid=1):
    return {"id": rid, "op": "exec", "code": marker_code(marker)}


def test_pipe_socket_permissions(pipe_backend):
    path = pipe_backend.address
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_pipe_wrong_token(pipe_backend, marker):
    c = PipeClient(pipe_backend.address, "", auth=False)
    answer = c.roundtrip({"id": 0, "op": "auth", "token": "wrong"})
    assert answer["id"] == 0 and answer["error"]["type"] == "Unauthorized"
    assert c.recv_frame() is None  # closed
    assert_serving(pipe_backend)


@pytest.mark.parametrize(
    "first",
    [
        "exec",  # no auth frame at all
        {"id": 0, "op": "auth"},  # no token
        {"id": 0, "op": "auth", "token": 5},
        b"not json",
        b"",
    ],
)
def test_pipe_request_before_auth(pipe_backend, marker, first):
    c = PipeClient(pipe_backend.address, "", auth=False)
    c.send_frame(exec_frame(marker) if first == "exec" else first)
    c.send_frame(exec_frame(marker, 2))
    answer = c.recv_frame()
    assert answer["error"]["type"] == "Unauthorized"
    assert c.recv_frame() is None
    assert_serving(pipe_backend)


@pytest.mark.parametrize("authed", [False, True])
def test_pipe_huge_frame_length(pipe_backend, authed):
    c = PipeClient(pipe_backend.address, pipe_backend.token, auth=authed)
    c.sock.sendall((2**31).to_bytes(4, "big") + b"{}")
    answer = c.recv_frame()
    assert answer["error"]["type"] in ("FrameTooLarge", "Unauthorized")
    assert c.recv_frame() is None
    assert_serving(pipe_backend)


def test_pipe_frame_over_cap_after_auth(pipe_backend, marker):
    c = PipeClient(pipe_backend.address, pipe_backend.token)
    frame = exec_frame(marker)
    frame["code"] += "  # " + "x" * 5000
    c.send_frame(frame)
    assert c.recv_frame()["error"]["type"] == "FrameTooLarge"
    assert c.recv_frame() is None
    assert_serving(pipe_backend)


@pytest.mark.parametrize("authed", [False, True])
def test_pipe_truncated_frame(pipe_backend, marker, authed):
    c = PipeClient(pipe_backend.address, pipe_backend.token, auth=authed)
    data = json.dumps(exec_frame(marker)).encode()
    c.sock.sendall(len(data).to_bytes(4, "big") + data[:-5])
    c.sock.shutdown(socket.SHUT_WR)
    assert c.recv_frame() is None
    c = PipeClient(pipe_backend.address, pipe_backend.token, auth=authed)
    c.sock.sendall(b"\x00\x00")  # not even a whole length
    c.sock.shutdown(socket.SHUT_WR)
    assert c.recv_frame() is None
    assert_serving(pipe_backend)


def test_pipe_bad_frames_after_auth_keep_connection(pipe_backend):
    c = PipeClient(pipe_backend.address, pipe_backend.token)
    assert c.roundtrip(b"{nope")["error"]["type"] == "BadRequest"
    assert c.roundtrip(b"[]")["error"]["type"] == "BadRequest"
    assert c.roundtrip(b"")["error"]["type"] == "BadRequest"
    assert c.roundtrip({"id": 5})["error"]["type"] == "BadRequest"
    assert c.roundtrip({"id": 6, "op": "nope"}) == {
        "id": 6,
        "error": {"type": "UnknownOperation", "message": "unknown op `nope`", "traceback": ""},
    }
    assert c.roundtrip({"id": 7, "op": "eval"})["error"]["type"] == "BadRequest"
    for op in ([], {}, 5, None):  # `op` not a string (a list once crashed the server)
        assert c.roundtrip({"id": 8, "op": op}) == {
            "id": 8,
            "error": {"type": "BadRequest", "message": "missing or non-string field `op`", "traceback": ""},
        }
    assert c.roundtrip({"id": "x", "op": "eval", "expr": "3"}) == {"id": "x", "value": 3}
    # Frames the lone connection's short way does not take fall back to the general one.
    assert c.roundtrip(b' \n{"id": 9, "op": "eval", "expr": "4"} ') == {"id": 9, "value": 4}
    assert c.roundtrip(b'{"id": 10, "op": "eval", "expr": "1"} x')["error"]["type"] == "BadRequest"
    assert c.roundtrip(b'{"id": 11, "op": "eval", "expr": "\xff"}')["error"]["type"] == "BadRequest"
    assert c.roundtrip(b'[{"id": 12, "op": "eval", "expr": "1"}]')["error"]["type"] == "BadRequest"
    # The session as sent is checked even though the default session takes a short way.
    assert c.roundtrip({"id": 13, "op": "eval", "expr": "5", "session": ""}) == {"id": 13, "value": 5}
    for session in (5, ["a"], {"a": 1}):
        answer = c.roundtrip({"id": 14, "op": "eval", "expr": "5", "session": session})
        assert answer["error"]["type"] == "BadRequest", answer


def test_pipe_pipelining(pipe_backend):
    c = PipeClient(pipe_backend.address, pipe_backend.token)
    for i in range(200):
        c.send_frame({"id": i + 1, "op": "eval", "expr": "%d * 2" % i})
    answers = [c.recv_frame() for _ in range(200)]
    assert sorted(a["id"] for a in answers) == list(range(1, 201))
    assert all(a["value"] == (a["id"] - 1) * 2 for a in answers)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=200))
def test_pipe_fuzz_before_auth(pipe_backend, data):
    c = PipeClient(pipe_backend.address, pipe_backend.token, auth=False)
    try:
        c.sock.sendall(data)
        c.sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused and closed before we finished: fine
    while True:
        frame = c.recv_frame()
        if frame is None:
            break
        assert frame["error"]["type"] == "Unauthorized"
    c.close()


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(st.binary(max_size=100), max_size=4), tail=st.binary(max_size=20))
def test_pipe_fuzz_after_auth(pipe_backend, frames, tail):
    c = PipeClient(pipe_backend.address, pipe_backend.token)
    for f in frames:
        c.send_frame(f)
    try:
        c.sock.sendall(tail)
        c.sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    while True:
        frame = c.recv_frame()
        if frame is None:
            break
        assert "error" in frame
    c.close()


def test_pipe_fuzz_left_server_serving(pipe_backend, marker):
    assert_serving(pipe_backend)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(token=st.text(max_size=80), rid=st.one_of(st.integers(), st.text(max_size=5), st.none()))
def test_pipe_fuzz_tokens(pipe_backend, token, rid, tmp_path_factory):
    marker = tmp_path_factory.getbasetemp() / "fuzz-token-ran"
    c = PipeClient(pipe_backend.address, pipe_backend.token, auth=False)
    c.send_frame({"id": rid, "op": "auth", "token": token})
    c.send_frame(exec_frame(marker))
    answer = c.recv_frame()
    assert answer["error"]["type"] == "Unauthorized"
    assert answer["id"] == (rid if isinstance(rid, (int, str)) else None)
    assert c.recv_frame() is None
    c.close()
    assert not marker.exists()


# ---- gRPC -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grpc_backend():
    b = Backend("grpc")
    assert b.event["event"] == "ready"
    yield b
    b.stop()


@pytest.mark.parametrize("metadata", [[("authorization", "Bearer wrong")], [], [("authorization", "wrong")]])
def test_grpc_refuses_bad_token(grpc_backend, marker, metadata):
    import grpc

    from beep_backend import backend_pb2 as pb

    c = grpc_backend.client()
    with pytest.raises(grpc.RpcError) as info:
        c.stub.Exec(pb.ExecRequest(code=marker_code(marker)), metadata=metadata, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        c.stub.Info(pb.InfoRequest(), metadata=metadata, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert_serving(grpc_backend)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_grpc_bearer_scheme_is_case_insensitive(grpc_backend, scheme):
    import grpc

    from beep_backend import backend_pb2 as pb

    c = grpc_backend.client()
    reply = c.stub.Eval(
        pb.EvalRequest(expr="6*7"),
        metadata=[("authorization", scheme + " " + grpc_backend.token)],
        timeout=10,
    )
    assert reply.value_json == "42"
    with pytest.raises(grpc.RpcError) as info:  # the token itself is case-sensitive
        c.stub.Eval(
            pb.EvalRequest(expr="6*7"),
            metadata=[("authorization", scheme + " " + grpc_backend.token.upper())],
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_invalid_arguments(grpc_backend):
    import grpc

    from beep_backend import backend_pb2 as pb

    c = grpc_backend.client()
    bad = [
        ("Eval", pb.EvalRequest()),
        ("Import", pb.ImportRequest()),
        ("Create", pb.CreateRequest()),
        ("Create", pb.CreateRequest(path="dict", args_json="[not json")),
        ("Create", pb.CreateRequest(path="dict", args_json="{}")),
        ("Call", pb.CallRequest(handle="h1")),
        ("GetAttr", pb.GetAttrRequest(name="x")),
        ("SetAttr", pb.SetAttrRequest(handle="h1", name="x")),
        ("Release", pb.ReleaseRequest()),
        ("Exec", pb.ExecRequest(code="1", timeout=-1)),
    ]
    for name, message in bad:
        with pytest.raises(grpc.RpcError) as info:
            c.rpc(name, message)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    # a user error is not a status: it travels in the reply
    reply = c.rpc("Eval", pb.EvalRequest(expr="1/0"))
    assert reply.WhichOneof("result") == "error" and reply.error.type == "ZeroDivisionError"
    assert_serving(grpc_backend)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300), preface=st.booleans())
def test_grpc_fuzz(grpc_backend, data, preface):
    if preface:  # get past the HTTP/2 connection preface, into frame parsing
        data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + data
    host, port = grpc_backend.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass


def test_grpc_fuzz_left_server_serving(grpc_backend):
    assert_serving(grpc_backend)


def test_http_works_with_curl(http_backend, marker):
    """curl sends `Expect: 100-continue` for bodies over 1 KiB: answered without a 1 s stall."""
    import shutil
    import subprocess
    import time

    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl")
    body = json.dumps({"expr": "len(%r)" % ("x" * 2000)})
    base = [curl, "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", body]
    t0 = time.monotonic()
    out = subprocess.run(
        [
            *base,
            "-H",
            "Authorization: Bearer " + http_backend.token,
            "http://%s/v1/eval" % http_backend.address,
        ],
        capture_output=True,
        timeout=10,
    ).stdout.decode()
    answer, status = out.splitlines()
    assert (json.loads(answer)["value"], status) == (2000, "200")
    assert time.monotonic() - t0 < 0.9
    bad = json.dumps({"code": marker_code(marker) + "  # " + "x" * 2000})
    out = subprocess.run(
        [
            curl,
            "-s",
            "-w",
            "\n%{http_code}",
            "--data-binary",
            bad,
            "http://%s/v1/exec" % http_backend.address,
        ],
        capture_output=True,
        timeout=10,
    ).stdout.decode()
    assert out.splitlines()[-1] == "401"
    assert_serving(http_backend)
