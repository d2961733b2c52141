"""fd 1/2 capture on Windows: files, and the `poll`/`probe` that `live.Capture` uses.

As on Linux, fd 1 and fd 2 are dup2'd once (`Capture.start`, after the ready line) and
`Capture` reads what is written to them: its fd thread while a call runs, the main thread at
each call's end. On Windows they are files, not pipes:

- A call's end must know whether the call wrote to fd 1/2, so the main thread reads both
  there. A read of an empty pipe is a round trip to the Wine server (~50 us, two per call:
  most of an `eval`'s cost under Wine), and a pipe has no event that is set by the write
  itself. A read at the end of a file is a `read(2)` in Wine's ntdll (~0.2 us), and one
  `ReadFile` on Windows, as a pipe's. So fd 1 and fd 2 each write to a temporary file
  (`FILE_APPEND_DATA` only: every write lands at its end, whoever holds a handle), and a
  reader handle of our own, with its own position, reads what was added. The reader handle
  deletes the file when the last handle to it closes (the process ending included).
- Nothing blocks: a writer never waits for the fd thread (a pipe's writer waited once its
  64 KiB were full), and a read at the end of a file returns at once. What the main thread
  reads under `fd_lock` at a call's end is all the call wrote.
- `Files.poll` (the fd thread) sleeps `POLL_INTERVAL` while a call runs (`IDLE_INTERVAL`
  while none does), then the thread reads every file.
- A file is not read back to empty, so it is *rotated* once its reader has passed
  `ROTATE_AT` bytes (the fd thread looks): at the next call's end the main thread makes a
  new file and dup2's it onto the fd (the std handle follows); the old one is read, first,
  until no one can write to it any more: a child process that inherited its handle may
  still. Whether anyone can is asked of the system once a second (an open that shares no
  write access fails while a writer is open); then the old file is read to its end and
  closed, and so deleted. A rotation closes fd 1's old handle, so it happens between calls,
  not while a call's code may be using it; a thread that outlives its call and writes to a
  raw std handle it kept is the one left that can see a closed handle (once per
  `ROTATE_AT` bytes of fd output: the price of not keeping all of it on disk).
- `follow_std_handles`: C code that writes to `GetStdHandle(STD_OUTPUT_HANDLE)` must reach the
  file too. The C runtime's `dup2` sets the std handles for fds 0-2 (checked under Wine; the
  UCRT does it for console programs only), so this only fills the gap where it did not.
"""

import _winapi
import msvcrt
import os
import secrets
import tempfile
import time

from .log import log

POLL_INTERVAL = 0.015  # seconds between two reads of the fd thread while a call runs
IDLE_INTERVAL = 0.1  # the same while no call runs (what comes then is the log's: no hurry)
ROTATE_AT = 64 << 20  # bytes read from one file before it is rotated
WRITERS_EVERY = 1.0  # seconds between two questions whether an old file still has writers
RETRY_AFTER = 10.0  # seconds before another try at a rotation that failed

GENERIC_READ = 0x80000000
FILE_APPEND_DATA = 0x0004
DELETE = 0x00010000
SYNCHRONIZE = 0x00100000
SHARE_ALL = 0x1 | 0x2 | 0x4  # read, write, delete
SHARE_NO_WRITE = 0x1 | 0x4
CREATE_NEW = 1
OPEN_EXISTING = 3
FILE_ATTRIBUTE_TEMPORARY = 0x100
FILE_FLAG_DELETE_ON_CLOSE = 0x04000000
ERROR_SHARING_VIOLATION = 32


def can_capture():
    return hasattr(_winapi, "CreateFile") and hasattr(msvcrt, "open_osfhandle")


def _open_file(index):
    """A new capture file: `(reader fd, writer fd, path)`; neither fd is inheritable."""
    name = "beep-backend-%d-%s.%s" % (os.getpid(), secrets.token_hex(8), ("out", "err")[index])
    path = os.path.join(tempfile.gettempdir(), name)
    writer = _winapi.CreateFile(
        path, FILE_APPEND_DATA | SYNCHRONIZE, SHARE_ALL, 0, CREATE_NEW, FILE_ATTRIBUTE_TEMPORARY, 0
    )
    try:
        reader = _winapi.CreateFile(
            path,
            GENERIC_READ | DELETE,
            SHARE_ALL,
            0,
            OPEN_EXISTING,
            FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE,
            0,
        )
    except OSError:
        _winapi.CloseHandle(writer)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    fds = []
    try:
        for handle in (reader, writer):
            fds.append(msvcrt.open_osfhandle(handle, 0))  # binary, as python.exe's fd 1/2
    except OSError:
        for fd in fds:
            os.close(fd)
        for handle in (reader, writer)[len(fds) :]:
            _winapi.CloseHandle(handle)
        raise
    return fds[0], fds[1], path


def open_files():
    """Two capture files for fd 1 and fd 2: `([reader fd, reader fd], [writer fd, writer fd], Files)`."""
    opened = []
    try:
        for index in (0, 1):
            opened.append(_open_file(index))
    except OSError:
        for reader, writer, _ in opened:
            os.close(reader)
            os.close(writer)
        raise
    return [o[0] for o in opened], [o[1] for o in opened], Files(opened)


def read(fd, size):
    """What the file behind reader `fd` holds past its position, up to `size` bytes; b"" at its
    end. Through the handle: Wine's C runtime answers every `os.read` after one at the end of a
    file with nothing, whatever was written since."""
    return _winapi.ReadFile(msvcrt.get_osfhandle(fd), size)[0]


def _position(fd):
    try:
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return 0


def _has_writers(path):
    """Whether a handle that may write to `path` is open (one round trip to the system)."""
    try:
        handle = _winapi.CreateFile(path, GENERIC_READ, SHARE_NO_WRITE, 0, OPEN_EXISTING, 0, 0)
    except OSError as exc:
        return getattr(exc, "winerror", None) == ERROR_SHARING_VIOLATION
    _winapi.CloseHandle(handle)
    return False


class _Old:
    """A rotated file, read until no one can write to it."""

    __slots__ = ("asked", "done", "fd", "index", "path")

    def __init__(self, fd, index, path):
        self.fd = fd
        self.index = index
        self.path = path
        self.asked = 0.0
        self.done = False  # no writer left: read to its end once more, then closed


class Files:
    def __init__(self, opened):
        self.current = [[reader, path] for reader, _, path in opened]
        self.old = []
        # What the main thread and the fd thread read, in this order: `(fd, stream index)`
        # of the old files (their output came first), then the current ones. Changed in
        # place, under `lock`, which both hold while they read.
        self.readers = [(reader, index) for index, (reader, _, _) in enumerate(opened)]
        self.index = {reader: index for reader, index in self.readers}  # `Capture.fd_index`
        self.lock = None  # `Capture.fd_lock` (set by it)
        self.running = None  # a callable: whether a call runs (set by `live.Capture`)
        self.due = False  # a current file has grown: the next call's end rotates it
        self._retry = 0.0

    def probe(self, timeout=0):
        """(The main thread, at a call's end, under `lock`) What to read: every file. A file
        that has grown is rotated here first: the call's code has returned, so it is not in
        the middle of using fd 1's handle (another thread of it could be)."""
        if self.due:
            self._rotate_grown()
        return self.readers

    def poll(self):
        """(The fd thread) Wait a tick, look after the files; what to read then."""
        running = self.running
        time.sleep(POLL_INTERVAL if running is None or running() else IDLE_INTERVAL)
        with self.lock:
            self._tend()
        return self.readers

    def _tend(self):
        """(Under `lock`) Close old files read to their end after their last writer left,
        ask about the others now and then, tell the next call's end to rotate a current
        file that has grown."""
        now = time.monotonic()
        if self.old:
            for old in [o for o in self.old if o.done]:
                self._forget(old)
            for old in self.old:
                if now - old.asked >= WRITERS_EVERY:
                    old.asked = now
                    old.done = not _has_writers(old.path)  # read to its end right after this
        if not self.due and now >= self._retry:
            self.due = any(_position(reader) >= ROTATE_AT for reader, _ in self.current)

    def _rotate_grown(self):
        self.due = False
        for index, (reader, _) in enumerate(self.current):
            if _position(reader) >= ROTATE_AT:
                try:
                    self._rotate(index)
                except OSError as exc:
                    log("rotating the capture file of fd %d failed: %s" % (index + 1, exc))
                    self._retry = time.monotonic() + RETRY_AFTER
                    return

    def _rotate(self, index):
        reader, writer, path = _open_file(index)
        try:
            os.dup2(writer, index + 1)
        except OSError:
            os.close(reader)
            raise
        finally:
            os.close(writer)
        follow_std_handles()
        old_reader, old_path = self.current[index]
        self.current[index] = [reader, path]
        self.old.append(_Old(old_reader, index, old_path))
        self.index[reader] = index
        self._order()

    def _forget(self, old):
        self.old.remove(old)
        self._order()
        del self.index[old.fd]
        try:
            os.close(old.fd)
        except OSError:
            pass

    def _order(self):
        self.readers[:] = [(o.fd, o.index) for o in self.old] + [
            (reader, index) for index, (reader, _) in enumerate(self.current)
        ]


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
