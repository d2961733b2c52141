"""fd 1/2 capture on Windows: the pipes, and the `poll`/`probe` that `live.Capture` uses.

As on Linux, fd 1 and fd 2 become the write ends of two pipes (`Capture.start` dup2's them
once, after the ready line) and `Capture` reads the other ends: its fd thread while a call
runs, the main thread at a call's end. Windows has no `select.poll`, so:

- The pipes are anonymous pipes of 64 KiB (`CreatePipe`); their read ends are in
  `PIPE_NOWAIT` mode, so `os.read` of an empty one raises instead of blocking (what
  `Capture._read_fds` expects of a non-blocking fd). Their write ends stay blocking: a writer
  that fills a pipe waits until the fd thread has read it.
- `Poller.poll` (the fd thread) peeks (`PeekNamedPipe`) every `POLL_INTERVAL` while a call
  runs (`IDLE_INTERVAL` while none does: an idle backend wakes 10 times a second, not 67) until
  a pipe holds unread bytes. `Poller.probe` (the main thread, at each call's end) does not peek: it
  names both pipes and the caller reads each, which fails at once when it is empty (a peek is
  a round trip to the Wine server as costly as two reads, and a read was to follow anyway).
  Nothing blocks in a read, so nobody holds bytes it read but has not handed on: what the main
  thread drains under `fd_lock` at a call's end is all the call wrote.
- `follow_std_handles`: C code that writes to `GetStdHandle(STD_OUTPUT_HANDLE)` must reach the
  pipe too. The C runtime's `dup2` sets the std handles for fds 0-2 (checked under Wine; the
  UCRT does it for console programs only), so this only fills the gap where it did not.
"""

import _winapi
import msvcrt
import os
import threading
import time

from .log import log

PIPE_BUFFER = 64 * 1024
PIPE_NOWAIT = 0x1
POLL_INTERVAL = 0.015  # seconds between two peeks of the fd thread while a call runs
IDLE_INTERVAL = 0.1  # the same while no call runs (what comes then is the log's: no hurry)


def can_capture():
    return all(hasattr(_winapi, name) for name in ("CreatePipe", "PeekNamedPipe", "SetNamedPipeHandleState"))


def open_pipes():
    """Two pipes for fd 1 and fd 2: `([read fd, read fd], [write fd, write fd], Poller)`."""
    readers, writers, handles = [], [], []
    try:
        for _ in (1, 2):
            read, write = _winapi.CreatePipe(None, PIPE_BUFFER)  # not inheritable
            try:
                _winapi.SetNamedPipeHandleState(read, PIPE_NOWAIT, None, None)
                readers.append(msvcrt.open_osfhandle(read, 0))  # binary, as python.exe's fd 1/2
            except OSError:
                _winapi.CloseHandle(read)
                _winapi.CloseHandle(write)
                raise
            handles.append(read)
            try:
                writers.append(msvcrt.open_osfhandle(write, 0))
            except OSError:
                _winapi.CloseHandle(write)
                raise
    except OSError:
        for fd in readers + writers:
            os.close(fd)
        raise
    return readers, writers, Poller(readers, handles)


class Poller:
    def __init__(self, fds, handles):
        self.ends = tuple(zip(fds, handles))
        self.both = [(fd, 1) for fd in fds]
        self._never = threading.Event()  # what the fd thread waits on once both pipes are gone
        self.running = None  # a callable: whether a call runs (set by `live.Capture`)

    def _peek(self):
        ready = []
        alive = 0
        for fd, handle in self.ends:
            try:
                available = _winapi.PeekNamedPipe(handle, 0)[0]
            except OSError:  # its write end is gone (fd 1/2 closed by user code): nothing comes
                continue
            alive += 1
            if available:
                ready.append((fd, 1))
        return ready, alive

    def probe(self, timeout=0):
        """The `(fd, 1)` of each pipe that may hold unread bytes: both (see the module doc).
        Never waits (callers pass 0)."""
        return self.both

    def poll(self):
        """(The fd thread) Wait until a pipe holds unread bytes; the `probe` of that moment."""
        while True:
            ready, alive = self._peek()
            if ready:
                return ready
            if not alive:
                self._never.wait()
            running = self.running
            time.sleep(POLL_INTERVAL if running is None or running() else IDLE_INTERVAL)


def follow_std_handles():
    """(After fd 1/2 were dup2'd) Point STD_OUTPUT_HANDLE/STD_ERROR_HANDLE at fd 1/2, where
    `dup2` did not (a program without a console). Never raises: fd 1/2 are captured all the
    same, only writes to a std handle left behind are not."""
    try:
        pairs = ((1, _winapi.STD_OUTPUT_HANDLE), (2, _winapi.STD_ERROR_HANDLE))
        stale = [(fd, w) for fd, w in pairs if _winapi.GetStdHandle(w) != msvcrt.get_osfhandle(fd)]
        if not stale:
            return
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.SetStdHandle.argtypes = [wintypes.DWORD, wintypes.HANDLE]
        kernel32.SetStdHandle.restype = wintypes.BOOL
        for fd, which in stale:
            if not kernel32.SetStdHandle(which, msvcrt.get_osfhandle(fd)):
                raise ctypes.WinError(ctypes.get_last_error())
    except (OSError, ImportError) as exc:
        log("the std handles do not follow fd 1/2: %s" % exc)
