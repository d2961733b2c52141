"""What the pipe transport does with its bytes, on every platform.

Frames are a 4-byte big-endian length + a JSON object. The first frame of a connection must be
`{"op": "auth", "token": ...}` (unless the server runs without a token), sent within the auth
deadline and no bigger than `PRE_AUTH_CAP`; later frames are capped at the server's
`max_frame`. An unparseable frame is answered with a 400 and the connection goes on; a frame
over the cap is answered with a 413 and closes the connection (its end cannot be found).

The I/O is the platform's: `pipe_server.py` (a Unix domain socket) and `winpipe.py` (a Windows
named pipe) subclass `FrameConnection` and give it `send`, `abort`, `close` and `queue_call`.
"""

import collections
import os
import threading
import time

from . import wire
from .auth import compare_digest
from .dispatcher import log

PRE_AUTH_CAP = 64 * 1024  # the auth frame is tiny; do not buffer more before it
DEFAULT_AUTH_TIMEOUT = 10.0  # seconds a new connection has to send its auth frame


class StartupError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def auth_timeout():
    """`BEEP_BACKEND_AUTH_TIMEOUT` (seconds, > 0), else the default."""
    try:
        value = float(os.environ.get("BEEP_BACKEND_AUTH_TIMEOUT", DEFAULT_AUTH_TIMEOUT))
    except ValueError:
        return DEFAULT_AUTH_TIMEOUT
    return value if value > 0 else DEFAULT_AUTH_TIMEOUT


class AuthDeadlines:
    """A client that never authenticates must not hold its connection forever: one thread
    (started with the first connection) expires each that is still not authenticated when
    its deadline comes. All deadlines are the same length, so they come in the order the
    connections did."""

    def __init__(self, timeout):
        self.timeout = timeout
        self._deadlines = collections.deque()  # (monotonic deadline, connection)
        self._cv = threading.Condition()
        self._started = False

    def add(self, conn):
        with self._cv:
            self._deadlines.append((time.monotonic() + self.timeout, conn))
            if not self._started:
                self._started = True
                threading.Thread(target=self._loop, name="pipe-auth-deadline", daemon=True).start()
            self._cv.notify()

    def _loop(self):
        while True:
            with self._cv:
                while not self._deadlines:
                    self._cv.wait()
                deadline, conn = self._deadlines[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cv.wait(delay)
                    continue
                self._deadlines.popleft()
            conn.expire_unauthed()


class FrameConnection:
    """One client: its read buffer, its auth state and a lock for writing answers.

    `server` has `token` (bytes or None), `max_frame`, `calls` (op -> function for the ops
    that run user code), `dispatcher` and `auth_timeout`. Subclasses implement:
    `send(data)` (write it all or raise OSError), `abort()` (end the stream from another
    thread so the reader sees its end), `close(linger=False)` and `queue_call(req)`.
    """

    def __init__(self, server):
        self.server = server
        self.lock = threading.Lock()
        self.buf = bytearray()
        self.authed = server.token is None
        self.closed = False

    def send_from_thread(self, data):
        """`send` for a thread other than the one that reads (stream frames); see pipe_server."""
        self.send(data)

    def expire_unauthed(self):
        """(Deadline thread) End the connection if it has not authenticated by now."""
        if self.authed or self.closed:
            return
        message = "no auth frame within %g s" % self.server.auth_timeout
        self.reply(None, 401, wire.error("Unauthorized", message))
        self.abort()

    def reply(self, rid, status, body):
        data = wire.frame(rid, body)
        try:
            with self.lock:
                self.send(data)
        except OSError:
            pass  # the client went away; its connection is closed on the next read

    def feed(self, chunk):
        """Handle the frames in `chunk`; an empty chunk is the end of the stream."""
        if not chunk:
            if self.buf:
                log("pipe: connection closed inside a frame")
            self.close()
            return
        buf = self.buf
        if not buf and self.authed:  # fast path: the chunk is exactly one whole frame
            size = int.from_bytes(chunk[:4], "big")
            if len(chunk) == 4 + size and size <= self.server.max_frame:
                self.handle(chunk[4:])
                return
        buf += chunk
        while len(buf) >= 4 and not self.closed:
            size = int.from_bytes(buf[:4], "big")
            cap = self.server.max_frame if self.authed else PRE_AUTH_CAP
            if size > cap:
                if self.authed:
                    message = "frame of %d bytes over the cap of %d" % (size, cap)
                    self.reply(None, 413, wire.error("FrameTooLarge", message))
                else:
                    message = "the first frame must be a small auth frame"
                    self.reply(None, 401, wire.error("Unauthorized", message))
                self.close(linger=True)
                return
            if len(buf) < 4 + size:
                return
            frame = bytes(buf[4 : 4 + size])
            del buf[: 4 + size]
            if self.authed:
                self.handle(frame)
            else:
                self.authenticate(frame)

    def handle(self, frame):
        try:
            req = wire.loads(frame)
        except ValueError as exc:
            log("pipe: unparseable frame: %s" % exc)
            self.reply(None, 400, wire.error("BadRequest", str(exc)))
            return
        self.dispatch(req)

    def dispatch(self, req):
        """Queue a call for the main thread; answer anything else at once."""
        op = req.get("op")
        if type(op) is str and op in self.server.calls:
            stream = req.get("stream")
            if stream is None or stream is False:
                self.queue_call(req)
            elif stream is not True:
                self.reply(req.get("id"), 400, wire.error("BadRequest", "`stream` must be a boolean"))
            else:
                # Event frames come from a thread of this request; the main thread runs the call
                # (in order with the others) and leaves its answer to that thread.
                waiter = self.server.dispatcher.prepare_stream(req)
                self.queue_call(req)
                self._start_follow(
                    req.get("id"), lambda emit, alive: self.server.dispatcher.follow(waiter, emit, alive)
                )
        elif op == "attach":
            dispatcher = self.server.dispatcher
            self._start_follow(req.get("id"), lambda emit, alive: dispatcher.attach(req, emit, alive))
        elif op == "auth":
            self.reply(req.get("id"), 200, {"value": True})
        else:
            rid = req.get("id")
            self.server.dispatcher.submit(req, lambda status, body: self.reply(rid, status, body))

    def _start_follow(self, rid, follow):
        """Send the events `follow(emit, alive)` gives as frames of request `rid`, then its end."""

        send = self.send_from_thread

        def emit(event):
            data = wire.frame(rid, event)
            with self.lock:
                send(data)  # OSError: the client went away; the reader stops

        def run():
            try:
                status, body = follow(emit, lambda: not self.closed)
                if status != 499:
                    emit_end = wire.frame(rid, body)
                    with self.lock:
                        send(emit_end)
            except OSError:
                return
            except Exception as exc:
                log("pipe: following a call failed: %r" % exc)
                self.reply(rid, 500, wire.error("InternalError", "following the call failed: %r" % exc))

        threading.Thread(target=run, name="pipe-follow", daemon=True).start()

    def authenticate(self, frame):
        """The first frame must be `{"op": "auth", "token": ...}`; anything else closes."""
        try:
            req = wire.loads(frame)
        except ValueError:
            req = {}
        given = req.get("token")
        ok = req.get("op") == "auth" and type(given) is str
        if ok and compare_digest(given.encode("utf-8", "replace"), self.server.token):
            self.authed = True
            self.reply(req.get("id"), 200, {"value": True})
            return
        self.reply(req.get("id"), 401, wire.error("Unauthorized", "missing or wrong token"))
        self.close(linger=True)
