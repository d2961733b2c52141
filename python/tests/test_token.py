"""The token handed over stdin (`--token-stdin`): nowhere user code or its children can read it."""

import json
import os
import subprocess
import sys

import pytest
from backend_clients import TRANSPORTS, Backend, PipeClient, backend_env

HAS_PROC = os.path.exists("/proc/self/environ")

# User code: the backend's own environment block, stdin, and a child process that reads
# the environment block of its parent (the backend).
LOOK_EVERYWHERE = r"""
import os, subprocess, sys
seen = {"env": os.environ.get("BEEP_BACKEND_TOKEN"), "stdin": sys.stdin.read()}
seen["fd0"] = os.read(0, 100).decode()
if os.path.exists("/proc/self/environ"):
    seen["proc_self"] = open("/proc/self/environ", "rb").read().decode("latin-1")
    child = "import os; print(open('/proc/%d/environ' % os.getppid(), 'rb').read().decode('latin-1'))"
    seen["proc_parent"] = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, check=True
    ).stdout.decode("latin-1")
seen
"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_token_from_stdin_is_nowhere_user_code_looks(transport):
    b = Backend(transport, token_stdin=True)
    try:
        assert b.event["event"] == "ready", (b.event, b.stderr_lines)
        c = b.client()
        answer = c.request("exec", code=LOOK_EVERYWHERE)
        seen = answer["value"]
        assert seen["env"] is None
        assert seen["stdin"] == "" and seen["fd0"] == ""
        if HAS_PROC:
            assert (
                "PYTHONPATH=" in seen["proc_self"] and "PYTHONPATH=" in seen["proc_parent"]
            )  # it did read them
            assert b.token not in seen["proc_self"]
            assert b.token not in seen["proc_parent"]
        assert b.token not in json.dumps(answer)
        c.close()
        # The token from stdin is the key: another one is refused.
        assert refuses(b, "0" * 64)
    finally:
        b.stop()


def refuses(b, token):
    """Does the backend refuse a client with `token`?"""
    if b.transport == "pipe":
        c = PipeClient(b.address, token, auth=False)
        answer = c.roundtrip({"id": 0, "op": "auth", "token": token})
        c.close()
        return answer["error"]["type"] == "Unauthorized"
    c = b.client(token=token)
    try:
        if b.transport == "http":
            status, _ = c.raw("POST", "/v1/eval", b'{"expr": "1"}')
            return status == 401
        import grpc

        try:
            c.request("eval", expr="1")
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False
    finally:
        c.close()


@pytest.mark.parametrize("stdin", [b"", b"\n", b"   \n"])
def test_token_stdin_without_a_token_line_fails(stdin):
    p = subprocess.run(
        [sys.executable, "-m", "beep_backend", "--transport", "http", "--token-stdin"],
        input=stdin,
        capture_output=True,
        env=backend_env(None),
        timeout=30,
    )
    assert p.returncode == 2
    event = json.loads(p.stdout.decode().splitlines()[0])
    assert event["event"] == "error" and event["kind"] == "no_token"
    assert "stdin" in event["message"]


def test_token_stdin_wins_over_the_environment():
    """With `--token-stdin`, a BEEP_BACKEND_TOKEN in the environment is not a second key."""
    b = Backend("http", token_stdin=True, env=backend_env("e" * 64))
    try:
        assert b.event["event"] == "ready"
        c = b.client()
        assert c.request("eval", expr="1+1") == {"value": 2}
        c.close()
        assert refuses(b, "e" * 64)
    finally:
        b.stop()
