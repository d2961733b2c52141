"""Log lines of the backend: `beep_backend: <message>` on the process's real stderr.

`sys.__stderr__`, not `sys.stderr`: a call's output capture swaps `sys.stderr`, and a log
line must never land in a caller's answer. A failed write (a closed stderr) is ignored.
"""

import sys

PREFIX = "beep_backend: "


def log(message):
    try:
        sys.__stderr__.write(PREFIX + message + "\n")
        sys.__stderr__.flush()
    except Exception:
        pass
