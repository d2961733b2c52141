"""The backend's log lines: one helper, on the real stderr, never inside a call's output."""

import subprocess
import sys
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parent.parent


def run(code):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PYTHON_DIR, capture_output=True, text=True, timeout=30
    )


def test_log_writes_one_prefixed_line_to_the_real_stderr_even_while_stderr_is_captured():
    done = run(
        "import io, sys\n"
        "from beep_backend.log import log\n"
        "captured = io.StringIO()\n"
        "sys.stderr = captured\n"
        "log('hello %d' % 1)\n"
        "sys.stderr = sys.__stderr__\n"
        "assert captured.getvalue() == '', captured.getvalue()\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "beep_backend: hello 1\n"


def test_log_survives_a_closed_stderr():
    done = run("import os\nfrom beep_backend.log import log\nos.close(2)\nlog('gone')\nprint('alive')\n")
    assert done.returncode == 0
    assert done.stdout == "alive\n"


def test_every_module_logs_through_the_one_helper():
    done = run(
        "from beep_backend import dispatcher, http_server, log, watchdog\n"
        "assert dispatcher.log is http_server.log is watchdog.log is log.log\n"
    )
    assert done.returncode == 0, done.stderr
