"""The pipe transport on Windows: a named pipe carrying the same frames as the Unix socket.

The pipe is `\\\\.\\pipe\\beep-backend-<128 random bits in hex>`, created with
`FILE_FLAG_FIRST_PIPE_INSTANCE` (if any process already holds the name, start fails instead of
sharing it), `PIPE_REJECT_REMOTE_CLIENTS` (no SMB clients) and a DACL that grants the current
user, and nobody else, access (`D:P(A;;GA;;;<user SID>)`, made with advapi32 through ctypes).
Every instance is created with that security descriptor. On Wine, the DACL is stored and
read back as set, but Wine runs every program as the one Unix user, so whether it keeps a
second Windows user out is not tested here.

The I/O is overlapped (`winio.PipeIO`, one read and one write event per connection). An accept
thread keeps one instance listening. As on Unix, the only connection is read by the main thread
itself, which runs a call that comes as one whole frame right there and writes its answer: one
wake-up per call (a hand-off to the main thread costs two more round trips through the Wine
server, ~200 us under Wine). The main thread waits on the pending read and on a wake event,
set when a second client comes, a call is queued, or the server stops.

Otherwise a connection has a reader thread: with several connections, each one; and for the
only one once a call has run 25-50 ms (`TICK`, the watcher thread), so that `interrupt`,
`info` and further requests on it are read while user code runs. A reader thread answers
`info`, `interrupt` and `shutdown` at once (`interrupt` is `_thread.interrupt_main`: there are no
signals to send) and queues calls for the main thread, in one FIFO, so the answers of one
connection keep their order. When one connection is left and no call runs, the main thread
takes it back: it cancels the thread's pending read (what the read had is handled first,
what the client sends next stays in the pipe), the thread ends and pokes the main thread.
Who reads a connection (`owner`) changes only under the server's `_own` lock, where reads are
started too, so two readers never overlap.
"""

import _winapi
import os
import threading
import time

from . import winio
from .dispatcher import log
from .framing import AuthDeadlines, FrameConnection, StartupError, auth_timeout
from .live import WAITER

PREFIX = "\\\\.\\pipe\\"
BUFFER = 64 * 1024
TICK = 0.025  # seconds between two looks of the watcher while calls run
IDLE_TICKS = 40  # looks without a call before the watcher sleeps until the next one
MAIN, THREAD, YIELDING = "main", "thread", "yielding"  # who reads a connection

PIPE_ACCESS_DUPLEX = 0x3
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
FILE_FLAG_OVERLAPPED = 0x40000000
PIPE_TYPE_BYTE = 0x0
PIPE_READMODE_BYTE = 0x0
PIPE_WAIT = 0x0
PIPE_REJECT_REMOTE_CLIENTS = 0x8
PIPE_UNLIMITED_INSTANCES = 255
ERROR_ACCESS_DENIED = 5
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232
ERROR_PIPE_NOT_CONNECTED = 233


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
        self.conns = []  # the open connections
        self._own = threading.Lock()  # who reads which connection; the connections' handles
        self._wake = None  # set: the main thread looks again at what it should do
        self._count = 0  # calls run by the main thread (the watcher's clue that calls come)
        self._parked = False  # the watcher sleeps until `_unpark` is set
        self._unpark = threading.Event()

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
        self._wake = winio.WakeEvent()
        self.dispatcher.wakers.append(self.poke)
        threading.Thread(target=self._accept_loop, name="pipe-accept", daemon=True).start()
        threading.Thread(target=self._watch_loop, name="pipe-watcher", daemon=True).start()
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
            try:
                conn = Connection(self, handle)
            except OSError as exc:
                log("pipe: cannot serve a client: %s" % exc)
                _close(handle)
                continue
            with self._own:
                self.conns.append(conn)
                if len(self.conns) == 1:
                    conn.owner = MAIN
                else:
                    conn.start_reader()
            if not conn.authed:
                self._deadlines.add(conn)
            self.poke()

    def poke(self):
        """(Any thread) The main thread looks again at what it should do: a client came or
        went, a call was queued, the server stops."""
        self._wake.set()
        self.dispatcher.queue.put(None)

    # ---- main thread -----------------------------------------------------------------

    def serve(self):
        """The main loop: run queued calls, read the only connection; until `stop`."""
        dispatcher = self.dispatcher
        queue = dispatcher.queue
        dispatcher.start_capture()
        try:
            while not dispatcher.stopping:
                if not queue.empty():
                    self._run_queued(queue.get())
                    continue
                conn = self._main_conn()
                if conn is not None:
                    self._serve_only(conn)
                else:
                    self._run_queued(queue.get())
        except KeyboardInterrupt:
            log("SIGINT while idle")

    def _run_queued(self, item):
        if type(item) is not tuple:  # a poke, or the dispatcher's stop
            return
        fn, req, reply = item
        self.calling()
        status, body = self.dispatcher.run_call(fn, req)
        try:
            reply(status, body)
        except BaseException as exc:
            log("failed to send an answer: %r" % exc)

    def calling(self):
        """(Main thread, before a call) Wake the watcher if it sleeps."""
        self._count += 1
        if self._parked:
            self._unpark.set()

    def _main_conn(self):
        """The only connection, for the main thread to read; None with none or several, and
        while its reader thread hands it over (the thread pokes when it has). With several,
        one the main thread held (its reader thread just gave it back, a client came while a
        queued call ran) gets a reader thread."""
        with self._own:
            if len(self.conns) != 1:
                for conn in self.conns:
                    if conn.owner is MAIN and not conn.closed:
                        conn.start_reader()
                return None
            conn = self.conns[0]
            if conn.owner is MAIN:
                return conn
            if conn.owner is THREAD:
                conn.owner = YIELDING
                conn.io.cancel_read()
        return None

    def _must_leave(self):
        return len(self.conns) > 1 or not self.dispatcher.queue.empty() or self.dispatcher.stopping

    def _serve_only(self, conn):
        """Read the only connection; a call that comes as one whole frame runs right here.
        Returns when the connection is no longer the main thread's, or `_must_leave`."""
        io = conn.io
        own = self._own
        wake = self._wake
        while True:
            with own:
                if conn.owner is not MAIN or conn.closed:
                    return
                data = conn.start_read()
            if data is None:
                while not io.wait_read(wake):
                    if self._must_leave():
                        io.cancel_read()  # what it read by now is handled below
                        break
                data = conn.end_read()
                if data is None:
                    if self._must_leave():
                        return self._hand_over(conn)
                    continue
            conn.feed_inline(data)
            if self._must_leave():
                return self._hand_over(conn)

    def _hand_over(self, conn):
        """(Main thread) With several connections, the main thread's gets a reader thread."""
        with self._own:
            if len(self.conns) > 1 and conn.owner is MAIN and not conn.closed:
                conn.start_reader()

    # ---- the watcher ---------------------------------------------------------------------

    def _watch_loop(self):
        """Once a call has run TICK to 2 TICK, the connection the main thread reads gets a reader
        thread, so requests on it (`interrupt`) are read while the call runs. Looks every TICK
        while calls come; after IDLE_TICKS without one it sleeps until `calling` wakes it."""
        last = 0
        seen = self._count
        idle = 0
        while True:
            time.sleep(TICK)
            running = self.dispatcher._running
            if running and running == last:
                self._take_over(running)
            last = running
            if running or self._count != seen:
                seen = self._count
                idle = 0
                continue
            idle += 1
            if idle < IDLE_TICKS:
                continue
            self._parked = True
            if self._count == seen:
                self._unpark.wait()
            self._unpark.clear()
            self._parked = False
            idle = 0
            seen = self._count

    def _take_over(self, running):
        with self._own:
            if self.dispatcher._running != running:
                return
            for conn in self.conns:
                if conn.owner is MAIN and not conn.closed:
                    conn.start_reader()


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
    """A client on one instance of the named pipe, read by the main thread or by its own
    thread (`owner`, see the module doc)."""

    def __init__(self, server, handle):
        FrameConnection.__init__(self, server)
        self.pipe = handle
        self.io = winio.PipeIO(handle)
        self.owner = None
        self.busy = 0  # reads and writes in flight: the handle closes after the last (under _own)
        self.inline = False  # the main thread handles a chunk that is one whole frame

    def start_reader(self):
        """(Under `_own`) This connection gets a reader thread."""
        self.owner = THREAD
        threading.Thread(target=self.read_loop, name="pipe-conn", daemon=True).start()

    def feed_inline(self, chunk):
        """(Main thread, its only connection) `feed`; a chunk that is exactly one whole frame
        holding a call runs the call right here (`queue_call`)."""
        size = len(chunk) - 4
        if (
            not self.buf
            and self.authed
            and 0 < size <= self.server.max_frame
            and int.from_bytes(chunk[:4], "big") == size
        ):
            self.inline = True
            try:
                self.handle(chunk[4:])
            finally:
                self.inline = False
            return
        self.feed(chunk)

    def read_loop(self):
        server = self.server
        own = server._own
        handed = False
        try:
            while True:
                with own:
                    if self.owner is YIELDING and not self.closed:
                        if len(server.conns) > 1:  # a client came meanwhile: keep reading
                            self.owner = THREAD
                        else:
                            self.owner = MAIN
                            handed = True
                    if self.owner is not THREAD or self.closed:
                        break
                    data = self.start_read()
                if data is None:
                    data = self.end_read()
                    if data is None:  # cancelled (the main thread takes the connection back)
                        continue
                self.feed(data)
        except Exception as exc:
            log("pipe: connection failed: %r" % exc)
            self.close()
        if handed:
            server.poke()

    def start_read(self):
        """(Under `_own`, by whoever reads it) Start a read: its bytes if it completed at once,
        None while it is pending (counted in `busy`: the handle stays open until `end_read`)."""
        data = self.io.start_read()
        if data is None:
            self.busy += 1
        return data

    def end_read(self):
        """The pending read's bytes once it completed (b"" at the end); None if cancelled."""
        data = self.io.finish_read()
        self.done()
        return data

    def done(self):
        """A read or write ended: close the handle if the connection closed meanwhile."""
        with self.server._own:
            self.busy -= 1
            if self.closed and not self.busy:
                self._dispose()

    def send(self, data):
        """Write all of `data` (under `self.lock`, held by `reply`)."""
        with self.server._own:
            if self.closed:
                raise OSError(ERROR_PIPE_NOT_CONNECTED, "the connection is closed")
            self.busy += 1
        try:
            self.io.write(data)
        finally:
            self.done()

    def queue_call(self, req):
        server = self.server
        dispatcher = server.dispatcher
        rid = req.get("id")
        if WAITER in req:  # a streamed request is answered by its follower thread
            dispatcher.submit(req, _ignore)
        elif self.inline and self.owner is MAIN and dispatcher.queue.empty() and not dispatcher.stopping:
            server.calling()
            status, body = dispatcher.run_call(server.calls[req["op"]], req)
            self.reply(rid, status, body)
        else:
            dispatcher.submit(req, lambda status, body: self.reply(rid, status, body))

    def abort(self):
        """(Another thread) End the connection: its pending read is cancelled, its reader sees
        the end."""
        self.close()

    def close(self, linger=False):
        """Close the connection. `linger` needs no extra step: what was written (the 401 or 413
        frame) stays readable by the client after the server's handle closes (checked under
        Wine; it is `DisconnectNamedPipe`, not used here, that discards unread data)."""
        server = self.server
        with server._own:
            if self.closed:
                return
            self.closed = True
            if self in server.conns:
                server.conns.remove(self)
            self.io.cancel_all()
            if not self.busy:
                self._dispose()
        server.poke()

    def _dispose(self):
        """(Under `_own`, closed, no I/O in flight) Close the handle and the events."""
        _close(self.pipe)
        self.io.free()


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
