"""Exit when the parent process (`BEEP_PARENT_PID`) is gone: checked every 0.5 s."""

import os
import threading
import time

from .log import log

INTERVAL = 0.5


def parent_alive(pid, was_our_parent):
    if was_our_parent and os.getppid() != pid:
        return False  # reparented: the parent died (even if it lingers as a zombie)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True
    return True


def watch_parent(pid, dispatcher):
    was_our_parent = os.getppid() == pid

    def loop():
        while True:
            time.sleep(INTERVAL)
            if not parent_alive(pid, was_our_parent):
                log("parent process %d is gone; exiting" % pid)
                dispatcher.exit(0)

    threading.Thread(target=loop, name="parent-watchdog", daemon=True).start()
