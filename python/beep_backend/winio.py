"""Overlapped I/O on one named-pipe handle, with its two events made once (ctypes, kernel32).

`_winapi.ReadFile(..., overlapped=True)` makes and closes an event per read and per write: two
more round trips to the Wine server per call, ~60 us of a ~250 us round trip under Wine (one
system call each on Windows). `PipeIO` keeps one OVERLAPPED and one manual-reset event for
reads and one for writes, and a 64 KiB read buffer, for the life of the connection.

One read and one write may be in flight at a time (callers serialize each: the connection's
reader, and the connection's send lock). The events belong to the `PipeIO` until `free`; the
caller frees it once no thread uses it any more.
"""

import ctypes
from ctypes import wintypes

READ_SIZE = 65536
ERROR_BROKEN_PIPE = 109
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997
INFINITE = 0xFFFFFFFF
WAIT_FAILED = 0xFFFFFFFF

_kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)


class _Overlapped(ctypes.Structure):
    _fields_ = [
        ("Internal", ctypes.c_size_t),
        ("InternalHigh", ctypes.c_size_t),
        ("Offset", wintypes.DWORD),
        ("OffsetHigh", wintypes.DWORD),
        ("hEvent", wintypes.HANDLE),
    ]


def _function(name, argtypes, restype=wintypes.BOOL):
    fn = getattr(_kernel32, name)
    fn.argtypes = argtypes
    fn.restype = restype
    return fn


_ov_p = ctypes.POINTER(_Overlapped)
_dword_p = ctypes.POINTER(wintypes.DWORD)
_ReadFile = _function("ReadFile", [wintypes.HANDLE, ctypes.c_void_p, wintypes.DWORD, _dword_p, _ov_p])
_WriteFile = _function("WriteFile", [wintypes.HANDLE, ctypes.c_void_p, wintypes.DWORD, _dword_p, _ov_p])
_GetOverlappedResult = _function("GetOverlappedResult", [wintypes.HANDLE, _ov_p, _dword_p, wintypes.BOOL])
_CancelIoEx = _function("CancelIoEx", [wintypes.HANDLE, _ov_p])
_CreateEventW = _function(
    "CreateEventW", [ctypes.c_void_p, wintypes.BOOL, wintypes.BOOL, wintypes.LPCWSTR], wintypes.HANDLE
)
_SetEvent = _function("SetEvent", [wintypes.HANDLE])
_CloseHandle = _function("CloseHandle", [wintypes.HANDLE])
_WaitForMultipleObjects = _function(
    "WaitForMultipleObjects",
    [wintypes.DWORD, ctypes.POINTER(wintypes.HANDLE), wintypes.BOOL, wintypes.DWORD],
    wintypes.DWORD,
)
_get_last_error = ctypes.get_last_error


def _event(manual_reset):
    handle = _CreateEventW(None, manual_reset, False, None)
    if not handle:
        raise ctypes.WinError(_get_last_error())
    return handle


class WakeEvent:
    """An auto-reset event: `set` from any thread; a `PipeIO.wait_read` beside it returns."""

    def __init__(self):
        self.handle = _event(False)

    def set(self):
        _SetEvent(self.handle)


class PipeIO:
    def __init__(self, handle):
        self.handle = handle
        self._rov = _Overlapped()
        self._wov = _Overlapped()
        self._rov.hEvent = _event(True)
        try:
            self._wov.hEvent = _event(True)
        except OSError:
            _CloseHandle(self._rov.hEvent)
            raise
        self._rov_p = ctypes.pointer(self._rov)
        self._wov_p = ctypes.pointer(self._wov)
        self._buf = ctypes.create_string_buffer(READ_SIZE)
        self._read_n = wintypes.DWORD()
        self._read_n_p = ctypes.pointer(self._read_n)
        self._write_n = wintypes.DWORD()
        self._write_n_p = ctypes.pointer(self._write_n)
        self._pair = (wintypes.HANDLE * 2)(self._rov.hEvent, None)

    def start_read(self):
        """Start a read: its bytes if it completed at once (b"" at the end of the stream, also for
        a handle closed meanwhile), None while it is pending (`wait_read`, `finish_read`)."""
        while True:
            if _ReadFile(self.handle, self._buf, READ_SIZE, self._read_n_p, self._rov_p):
                n = self._read_n.value
                if n:
                    return ctypes.string_at(self._buf, n)
                continue  # a zero-byte write of the client is no end
            if _get_last_error() == ERROR_IO_PENDING:
                return None
            return b""

    def wait_read(self, wake):
        """Wait until the pending read completes (True) or `wake` (a WakeEvent) is set (False)."""
        self._pair[1] = wake.handle
        which = _WaitForMultipleObjects(2, self._pair, False, INFINITE)
        if which == WAIT_FAILED:
            raise ctypes.WinError(_get_last_error())
        return which == 0

    def finish_read(self):
        """The bytes of the pending read, once it completed (b"" at the end of the stream); None if
        it was cancelled without data (`cancel_read`) or read zero bytes (read again)."""
        if _GetOverlappedResult(self.handle, self._rov_p, self._read_n_p, True):
            n = self._read_n.value
            return ctypes.string_at(self._buf, n) if n else None
        if _get_last_error() == ERROR_OPERATION_ABORTED:
            return None
        return b""

    def cancel_read(self):
        """(Any thread) Cancel the pending read; `finish_read` then gives what it had read, if it
        had completed, or None. Nothing the client sent is lost: it stays in the pipe."""
        _CancelIoEx(self.handle, self._rov_p)

    def cancel_all(self):
        """(Any thread) Cancel every pending I/O on the handle (before closing it)."""
        _CancelIoEx(self.handle, None)

    def write(self, data):
        """Write all of `data` (bytes); OSError if the pipe is gone."""
        data = bytes(data)
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        total = len(data)
        done = 0
        while done < total:
            if not _WriteFile(self.handle, base + done, total - done, self._write_n_p, self._wov_p):
                err = _get_last_error()
                if err != ERROR_IO_PENDING:
                    raise OSError(None, "write to the pipe failed", None, err)
            if not _GetOverlappedResult(self.handle, self._wov_p, self._write_n_p, True):
                raise OSError(None, "write to the pipe failed", None, _get_last_error())
            n = self._write_n.value
            if not n:
                raise OSError(None, "write to the pipe failed", None, ERROR_BROKEN_PIPE)
            done += n

    def free(self):
        """Close the events (once no thread reads, writes or waits on them)."""
        for ov in (self._rov, self._wov):
            if ov.hEvent:
                _CloseHandle(ov.hEvent)
                ov.hEvent = None
