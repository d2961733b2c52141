"""The pipe transport on Windows: a named pipe carrying the same frames as the Unix socket.

The pipe is `\\\\.\\pipe\\beep-backend-<128 random bits in hex>`, created with
`FILE_FLAG_FIRST_PIPE_INSTANCE` (if any process already holds the name, start fails instead of
sharing it), `PIPE_REJECT_REMOTE_CLIENTS` (no SMB clients) and a DACL that grants the current
user, and nobody else, access (`D:P(A;;GA;;;<user SID>)`, made with advapi32 through ctypes).
Every instance is created with that security descriptor. On Wine, the DACL is stored and
read back as set, but Wine runs every program as the one Unix user, so whether it keeps a
second Windows user out is not tested here.

The I/O is overlapped (`_winapi`): an accept thread keeps one instance listening and starts a
reader thread per client; the reader turns bytes into frames (`framing.FrameConnection`), and
calls that run user code go through the dispatcher's queue to the main thread
(`Dispatcher.run_forever`), which writes the answer. `info`, `interrupt` and `shutdown` are
answered by the reader thread at once, so `interrupt` reaches a busy call
(`_thread.interrupt_main`, as there are no signals to send). All calls share one FIFO, so the
answers of one connection keep their order.
"""

import _winapi
import os
import threading

from .dispatcher import log
from .framing import AuthDeadlines, FrameConnection, StartupError, auth_timeout
from .live import WAITER

PREFIX = "\\\\.\\pipe\\"
BUFFER = 64 * 1024
READ_SIZE = 65536

PIPE_ACCESS_DUPLEX = 0x3
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
FILE_FLAG_OVERLAPPED = 0x40000000
PIPE_TYPE_BYTE = 0x0
PIPE_READMODE_BYTE = 0x0
PIPE_WAIT = 0x0
PIPE_REJECT_REMOTE_CLIENTS = 0x8
PIPE_UNLIMITED_INSTANCES = 255
ERROR_ACCESS_DENIED = 5
ERROR_BROKEN_PIPE = 109
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232
ERROR_PIPE_NOT_CONNECTED = 233
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997


def random_name():
    return PREFIX + "beep-backend-" + os.urandom(16).hex()


class WinPipeServer:
    name = "pipe"

    def __init__(self, dispatcher, token, max_frame, name=None):
        self.dispatcher = dispatcher
        self.calls = dispatcher.operations.table  # op -> function, for the ops that run user code
        self.token = token
        self.max_frame = max_frame
        if name is not None and not name.lower().startswith(PREFIX):
            # A file path (what a Unix-minded caller passes as --socket): on Windows the
            # address is a pipe name, and a fresh random one is the safe choice.
            log("pipe: --socket %s is not a pipe name (\\\\.\\pipe\\...); using a random name" % name)
            name = None
        self.address = name or random_name()
        self.auth_timeout = auth_timeout()
        self._deadlines = AuthDeadlines(self.auth_timeout)
        self._security = None
        self._listening = None  # the instance waiting for a client
        self._closed = False

    def bind(self):
        try:
            self._security = OwnerOnly()
        except OSError as exc:
            message = "cannot make the pipe's security descriptor: %s" % exc
            raise StartupError("bind_failed", message) from None
        try:
            self._listening = self._instance(first=True)
        except OSError as exc:
            if exc.winerror in (ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY):
                message = "the pipe %s already exists (another process holds it)" % self.address
            else:
                message = "cannot create the pipe %s: %s" % (self.address, exc)
            raise StartupError("bind_failed", message) from None
        # Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE; on any system, an instance that is
        # not the only one means someone else holds the name.
        count = _instances(self._listening)
        if count is not None and count != 1:
            _close(self._listening)
            self._listening = None
            message = "the pipe %s already exists (another process holds it)" % self.address
            raise StartupError("bind_failed", message)
        threading.Thread(target=self._accept_loop, name="pipe-accept", daemon=True).start()
        return self.address

    def _instance(self, first=False):
        mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED
        if first:
            mode |= FILE_FLAG_FIRST_PIPE_INSTANCE
        return _winapi.CreateNamedPipe(
            self.address,
            mode,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            PIPE_UNLIMITED_INSTANCES,
            BUFFER,
            BUFFER,
            0,
            self._security.pointer,
        )

    def close(self):
        self._closed = True
        handle, self._listening = self._listening, None
        if handle is not None:
            _close(handle)

    def _accept_loop(self):
        while not self._closed:
            handle = self._listening
            try:
                connected = _connect(handle)
            except OSError as exc:
                if self._closed:
                    return
                log("pipe: accept failed: %s" % exc)
                connected = False
            try:  # the next instance before serving this one: clients find one listening
                self._listening = self._instance()
            except OSError as exc:
                log("pipe: cannot create another instance: %s" % exc)
                self._listening = None
                _close(handle)
                return
            if not connected:
                _close(handle)
                continue
            conn = Connection(self, handle)
            if not conn.authed:
                self._deadlines.add(conn)
            threading.Thread(target=conn.read_loop, name="pipe-conn", daemon=True).start()


def _connect(handle):
    """Wait for a client on `handle`; False if it came and went before we saw it."""
    try:
        ov = _winapi.ConnectNamedPipe(handle, overlapped=True)
    except OSError as exc:
        if exc.winerror == ERROR_NO_DATA:  # connected, wrote and closed already
            return False
        raise
    ov.GetOverlappedResult(True)
    return True


def _instances(handle):
    """How many instances of the pipe exist (`GetNamedPipeHandleStateW`); None if unknown."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    get_state = kernel32.GetNamedPipeHandleStateW
    dword_p = ctypes.POINTER(wintypes.DWORD)
    get_state.argtypes = [wintypes.HANDLE, dword_p, dword_p, dword_p, dword_p]
    get_state.argtypes += [ctypes.c_void_p, wintypes.DWORD]
    count = wintypes.DWORD()
    if not get_state(handle, None, ctypes.byref(count), None, None, None, 0):
        return None
    return count.value


def _close(handle):
    try:
        _winapi.CloseHandle(handle)
    except OSError:
        pass


class Connection(FrameConnection):
    """A client on one instance of the named pipe; its reader thread calls `feed`."""

    def __init__(self, server, handle):
        FrameConnection.__init__(self, server)
        self.pipe = handle
        self._read = None  # the pending read, to cancel from another thread
        self._handle_lock = threading.Lock()  # closing vs. I/O started from other threads

    def read_loop(self):
        try:
            while not self.closed:
                chunk = self._recv()
                if chunk is not None:
                    self.feed(chunk)
        except Exception as exc:
            log("pipe: connection failed: %r" % exc)
            self.close()

    def _recv(self):
        """The next bytes from the client; b"" at its end (or once aborted), None if none."""
        with self._handle_lock:
            if self.closed:
                return b""
            try:
                ov, _ = _winapi.ReadFile(self.pipe, READ_SIZE, overlapped=True)
            except OSError:
                return b""
            self._read = ov
        try:
            _, err = ov.GetOverlappedResult(True)
        except OSError:
            return b""
        finally:
            self._read = None
        if err == ERROR_OPERATION_ABORTED:
            return b""
        return ov.getbuffer() or None  # a zero-byte write by the client is no end

    def send(self, data):
        """Write all of `data` (under `self.lock`, held by `reply`)."""
        view = memoryview(data)
        while view:
            with self._handle_lock:
                if self.closed:
                    raise OSError(ERROR_PIPE_NOT_CONNECTED, "the connection is closed")
                ov, _ = _winapi.WriteFile(self.pipe, view, overlapped=True)
            written, err = ov.GetOverlappedResult(True)
            if err or not written:
                raise OSError(err or ERROR_BROKEN_PIPE, "write to the pipe failed")
            view = view[written:]

    def queue_call(self, req):
        rid = req.get("id")
        if WAITER in req:  # a streamed request is answered by its follower thread
            self.server.dispatcher.submit(req, _ignore)
            return
        self.server.dispatcher.submit(req, lambda status, body: self.reply(rid, status, body))

    def abort(self):
        """(Another thread) End the pending read: `close` cancels it, the reader sees the end."""
        self.close()

    def close(self, linger=False):
        """Close the handle. `linger` needs no extra step: what was written (the 401 or 413
        frame) stays readable by the client after the server's handle closes (checked under
        Wine; it is `DisconnectNamedPipe`, not used here, that discards unread data)."""
        with self._handle_lock:
            if self.closed:
                return
            self.closed = True
            read = self._read
            if read is not None:
                try:
                    read.cancel()
                except OSError:
                    pass
            _close(self.pipe)


class OwnerOnly:
    """SECURITY_ATTRIBUTES whose DACL lets the current user, and nobody else, open the pipe.

    `pointer` is its address for `_winapi.CreateNamedPipe`; the memory lives as long as this
    object (the server's).
    """

    def __init__(self):
        import ctypes
        from ctypes import wintypes

        advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)

        def check(ok):
            if not ok:
                raise ctypes.WinError(ctypes.get_last_error())

        kernel32.GetCurrentProcess.restype = wintypes.HANDLE
        kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
        kernel32.LocalFree.argtypes = [ctypes.c_void_p]
        kernel32.LocalFree.restype = ctypes.c_void_p
        handle_p = ctypes.POINTER(wintypes.HANDLE)
        advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD, handle_p]
        advapi32.GetTokenInformation.argtypes = [
            wintypes.HANDLE,
            ctypes.c_int,
            ctypes.c_void_p,
            wintypes.DWORD,
            ctypes.POINTER(wintypes.DWORD),
        ]
        advapi32.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.argtypes = [
            wintypes.LPCWSTR,
            wintypes.DWORD,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_void_p,
        ]

        token_query, token_user = 0x0008, 1
        token = wintypes.HANDLE()
        check(advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), token_query, ctypes.byref(token)))
        try:
            size = wintypes.DWORD()
            advapi32.GetTokenInformation(token, token_user, None, 0, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            check(advapi32.GetTokenInformation(token, token_user, buf, size, ctypes.byref(size)))
        finally:
            kernel32.CloseHandle(token)
        sid = ctypes.c_void_p.from_buffer(buf).value  # TOKEN_USER starts with the SID's pointer
        text = ctypes.c_void_p()
        check(advapi32.ConvertSidToStringSidW(sid, ctypes.byref(text)))
        try:
            self.sid = ctypes.wstring_at(text.value)
        finally:
            kernel32.LocalFree(text)
        self.sddl = "D:P(A;;GA;;;%s)" % self.sid  # protected: nothing inherited, one entry
        descriptor = ctypes.c_void_p()
        check(
            advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
                self.sddl, 1, ctypes.byref(descriptor), None
            )
        )

        class SecurityAttributes(ctypes.Structure):
            _fields_ = [
                ("nLength", wintypes.DWORD),
                ("lpSecurityDescriptor", ctypes.c_void_p),
                ("bInheritHandle", wintypes.BOOL),
            ]

        self._descriptor = descriptor  # LocalAlloc'ed; kept for the life of the server
        self._attributes = SecurityAttributes(ctypes.sizeof(SecurityAttributes), descriptor.value, False)
        self.pointer = ctypes.addressof(self._attributes)


def _ignore(status, body):
    pass
