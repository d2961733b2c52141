"""`--preload MODULE:FUNC`: run once before the ready line, bound in the default session."""

import json
import os
import subprocess
import sys

import pytest
from backend_clients import Backend, backend_env

MODEL = """\
import os
CALLS = []
def load():
    CALLS.append(os.getpid())
    return {"weights": 42, "calls": CALLS}
def bad():
    raise ValueError("no weights here")
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "model.py").write_text(MODEL)
    return tmp_path


@pytest.mark.parametrize("python_args", [[], ["-S"]])
def test_preload_value_is_bound_in_the_default_session(transport, project, python_args):
    env = backend_env()
    env["PYTHONPATH"] = os.pathsep.join([str(project), env["PYTHONPATH"]])
    b = Backend(
        transport, args=["--preload", "app.model:load"], env=env, python_args=python_args, token_stdin=True
    )
    try:
        assert b.event["event"] == "ready", b.stderr_lines
        c = b.client()
        assert c.request("eval", expr="load")["value"] == {"weights": 42, "calls": [b.proc.pid]}
        other = c.request("eval", expr="'load' in globals()", session="other")
        assert other["value"] is False
    finally:
        b.stop()


def test_a_raising_preload_fails_the_start_with_its_traceback(project):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "beep_backend",
            "--transport",
            "pipe",
            "--token-stdin",
            "--preload",
            "app.model:bad",
        ],
        input=b"t" * 64 + b"\n",
        cwd=project,
        env=backend_env(),
        capture_output=True,
        timeout=20,
    )
    assert p.returncode != 0
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert event["event"] == "error" and event["kind"] == "preload_failed"
    assert "Traceback (most recent call last)" in event["message"]
    assert 'model.py", line 7, in bad' in event["message"]
    assert event["message"].rstrip().endswith("ValueError: no weights here")


@pytest.mark.parametrize("spec", ["app.model", "app.model:", ":load", "app.model:not-a-name"])
def test_a_malformed_preload_is_a_bad_argument(spec):
    p = subprocess.run(
        [sys.executable, "-m", "beep_backend", "--transport", "http", "--preload", spec],
        env=backend_env("t"),
        capture_output=True,
        timeout=20,
    )
    assert p.returncode == 2
    event = json.loads(p.stdout.decode().splitlines()[0])
    assert event["event"] == "error" and event["kind"] == "bad_argument"
