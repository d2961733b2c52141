"""Start-up, readiness line, refusal to start, shutdown and the parent-death watchdog."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from backend_clients import TRANSPORTS, Backend, PipeClient, backend_env, wait_for


def run_backend(args, env, timeout=20):
    return subprocess.run(
        [sys.executable, "-m", "beep_backend", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )


def gone(pid):
    """True when `pid` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ready_line_and_shutdown(transport, tmp_path):
    args = ["--socket", str(tmp_path / "d" / "b.sock")] if transport == "pipe" else []
    b = Backend(transport, args=[*args, "--env-name", "myenv"])
    try:
        assert b.event == {"event": "ready", "transport": transport, "address": b.address, "pid": b.proc.pid}
        if transport == "pipe":
            assert b.address == str(tmp_path / "d" / "b.sock")
            assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
        else:
            assert b.address.startswith("127.0.0.1:")
        c = b.client()
        assert c.request("info")["value"]["env_name"] == "myenv"
        # Output while no call runs (a thread of user code) goes to the log (stderr), never to
        # the protocol's stdout; output during a call is the call's.
        c.request(
            "exec",
            code="import os, threading, time\n"
            "def later():\n"
            "    time.sleep(0.3)\n"
            "    print('stray', flush=True)\n"
            "    os.write(1, b'raw-fd\\n')\n"
            "threading.Thread(target=later).start()\n",
        )
        assert wait_for(lambda: any("raw-fd" in line for line in b.stderr_lines))
        assert any("stray" in line for line in b.stderr_lines)
        assert c.request("shutdown") == {"value": True}
        assert b.proc.wait(5) == 0
        assert b.proc.stdout.read() == b""
        if transport == "pipe":
            assert not os.path.exists(b.address)
    finally:
        b.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refuses_to_start_without_token(transport):
    p = run_backend(["--transport", transport], backend_env(None))
    assert p.returncode != 0
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "error" and event["kind"] == "no_token" and event["message"]


@pytest.mark.parametrize(
    "args",
    [
        ["--transport", "smtp"],
        [],
        ["--transport", "http", "--bogus"],
        ["--transport", "http", "--max-body", "x"],
    ],
)
def test_bad_arguments(args):
    p = run_backend(args, backend_env("t"))
    assert p.returncode != 0
    event = json.loads(p.stdout.decode().splitlines()[0])
    assert event["event"] == "error" and event["kind"] == "bad_argument"


def test_insecure_no_token_warns_and_serves():
    b = Backend("pipe", token=None, args=["--insecure-no-token"], env=backend_env(None))
    try:
        assert b.event["event"] == "ready"
        assert wait_for(lambda: any("WARNING" in line for line in b.stderr_lines))
        c = PipeClient(b.address, "", auth=False)
        c.send_frame({"id": 1, "op": "eval", "expr": "1+2"})
        assert c.recv_frame() == {"id": 1, "value": 3}
    finally:
        b.stop()


def test_token_is_not_visible_to_user_code():
    b = Backend("http")
    try:
        c = b.client()
        assert c.request("eval", expr="__import__('os').environ.get('BEEP_BACKEND_TOKEN')") == {"value": None}
    finally:
        b.stop()


def test_pipe_refuses_loose_socket_dir(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o755)
    p = run_backend(["--transport", "pipe", "--socket", str(loose / "b.sock")], backend_env("t"))
    assert p.returncode != 0
    event = json.loads(p.stdout.decode().splitlines()[0])
    assert event["kind"] == "insecure_socket_dir"
    assert not (loose / "b.sock").exists()


def test_pipe_refuses_too_long_socket_path(tmp_path):
    p = run_backend(
        ["--transport", "pipe", "--socket", str(tmp_path / ("x" * 120) / "b.sock")], backend_env("t")
    )
    event = json.loads(p.stdout.decode().splitlines()[0])
    assert p.returncode != 0
    assert event["kind"] == "bind_failed" and "103" in event["message"]
    assert not (tmp_path / ("x" * 120)).exists()


def test_pipe_replaces_stale_socket_and_refuses_live_one(tmp_path):
    d = tmp_path / "d"
    first = Backend("pipe", args=["--socket", str(d / "b.sock")])
    try:
        p = run_backend(["--transport", "pipe", "--socket", str(d / "b.sock")], backend_env("t"))
        assert json.loads(p.stdout.decode().splitlines()[0])["kind"] == "bind_failed"
        assert first.client().request("eval", expr="1") == {"value": 1}
        first.proc.kill()  # leaves its socket file behind
        first.proc.wait()
        assert os.path.exists(d / "b.sock")
        second = Backend("pipe", args=["--socket", str(d / "b.sock")])
        assert second.event["event"] == "ready"
        assert second.client().request("eval", expr="2") == {"value": 2}
        second.stop()
    finally:
        first.stop()


def test_sigterm_exits_cleanly_and_removes_socket():
    b = Backend("pipe")
    try:
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(5) == 0
        assert not os.path.exists(b.address)
    finally:
        b.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_shutdown_during_long_call(transport):
    b = Backend(transport)
    try:
        runner = b.client()
        threading.Thread(
            target=lambda: _ignore_errors(runner.request, "exec", code="import time\ntime.sleep(30)"),
            daemon=True,
        ).start()
        time.sleep(0.3)
        t0 = time.monotonic()
        assert b.client().request("shutdown") == {"value": True}
        assert b.proc.wait(5) == 0
        assert time.monotonic() - t0 < 3
    finally:
        b.stop()


def _ignore_errors(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception:
        pass


@pytest.mark.parametrize("transport", ["pipe", "grpc"])
def test_exits_when_parent_dies(transport, tmp_path):
    parent_code = textwrap.dedent(
        """
        import os, subprocess, sys, time
        env = dict(os.environ, BEEP_PARENT_PID=str(os.getpid()))
        p = subprocess.Popen([sys.executable, "-m", "beep_backend", "--transport", sys.argv[1]],
                             env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        sys.stdout.write(p.stdout.readline().decode())
        sys.stdout.flush()
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, transport],
        env=backend_env("t"),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        event = json.loads(parent.stdout.readline())
        assert event["event"] == "ready"
        child = event["pid"]
        assert not gone(child)
        parent.kill()
        parent.wait()
        t0 = time.monotonic()
        assert wait_for(lambda: gone(child), timeout=5)
        assert time.monotonic() - t0 < 2.5
    finally:
        parent.kill()
        parent.wait()


def _other_pythons():
    """Other interpreters on this machine (pyenv), oldest and newest: the stdlib transports
    must run on Python 3.8+."""
    import glob

    found = sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")),
        key=lambda p: tuple(int(x) for x in p.split("/")[-3].split(".")[:2]),
    )
    found = [p for p in found if tuple(int(x) for x in p.split("/")[-3].split(".")[:2]) >= (3, 8)]
    return sorted(set(found[:1] + found[-1:]))


@pytest.mark.parametrize(
    "python", _other_pythons() or [pytest.param(None, marks=pytest.mark.skip("none found"))]
)
@pytest.mark.parametrize("transport", ["http", "pipe"])
def test_runs_on_other_pythons(python, transport):
    b = Backend(transport, python=python)
    try:
        assert b.event["event"] == "ready", b.stderr_lines
        c = b.client()
        assert c.request("exec", code="print('hi')\n[1, b'x']") == {
            "stdout": "hi\n",
            "stderr": "",
            "value": [1, {"$bytes": "eA=="}],
        }
        assert c.request("eval", expr="1/0")["error"]["type"] == "ZeroDivisionError"
        assert (
            c.request("exec", code="import time; time.sleep(5)", timeout=0.2)["error"]["type"]
            == "TimeoutError"
        )
        assert c.request("shutdown") == {"value": True}
        assert b.proc.wait(5) == 0
    finally:
        b.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_started_with_no_site_still_sees_site_packages(transport):
    """`python -S` starts faster; user code must still import the environment's packages."""
    b = Backend(transport, python_args=["-S"])
    try:
        assert b.event["event"] == "ready", b.stderr_lines
        c = b.client()
        answer = c.request(
            "exec", code="import sys, hypothesis\nsys.flags.no_site, 'site-packages' in hypothesis.__file__"
        )
        assert answer["value"] == [1, True]
    finally:
        b.stop()
