"""Log lines of the backend: `beep_backend: <message>` on the process's real stderr.

Not `sys.stderr`: that is the running call's output (see `live.py`), and a log line must never
land in a caller's answer. Once fd 2 is captured for calls, `set_log_fd` names the duplicate of
the real stderr the log goes to. A failed write (a closed stderr) is ignored.
"""

import os
import sys

PREFIX = "beep_backend: "
_fd = None  # the real stderr once fd 2 is captured, else None (sys.__stderr__)


def set_log_fd(fd):
    global _fd
    _fd = fd


def log(message):
    try:
        if _fd is not None:
            os.write(_fd, (PREFIX + message + "\n").encode("utf-8", "replace"))
            return
        sys.__stderr__.write(PREFIX + message + "\n")
        sys.__stderr__.flush()
    except Exception:
        pass
