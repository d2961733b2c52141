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


def wait_for_exit_windows(pid):
    """Block until process `pid` ends. Not `os.kill(pid, 0)`: on Windows that terminates it."""
    import _winapi

    synchronize = 0x00100000
    try:
        handle = _winapi.OpenProcess(synchronize, False, pid)
    except OSError:
        return  # gone already
    try:
        _winapi.WaitForSingleObject(handle, _winapi.INFINITE)
    finally:
        _winapi.CloseHandle(handle)


def watch_parent(pid, dispatcher):
    was_our_parent = os.getppid() == pid

    def wait_windows():
        wait_for_exit_windows(pid)
        log("parent process %d is gone; exiting" % pid)
        dispatcher.exit(0)

    if os.name == "nt":
        threading.Thread(target=wait_windows, name="parent-watchdog", daemon=True).start()
        return

    def loop():
        while True:
            time.sleep(INTERVAL)
            if not parent_alive(pid, was_our_parent):
                log("parent process %d is gone; exiting" % pid)
                dispatcher.exit(0)

    threading.Thread(target=loop, name="parent-watchdog", daemon=True).start()
