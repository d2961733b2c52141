"""The pipe transport: a Unix domain socket, frames of a 4-byte big-endian length + JSON.

The main thread runs a selector loop over the listening socket and every connection and
runs each request inline, so a call costs one thread wake-up, like a plain threaded echo
server (a hand-off from a reader thread to the main thread costs 2-3 more under load).

Once a call has run 25-50 ms (`LONG_CALL`, see the dispatcher), a watcher thread takes over the
selector: it accepts, authenticates, answers `info`/`interrupt`/`shutdown` at once and
queues other requests, which the main thread runs, in order, when the call ends. All
requests are queued in one FIFO, so the answers of one connection keep their order.

With exactly one connection the main thread skips `poll` and blocks in `recv` on that
connection (one syscall less per call: ~10 us under load). A sentinel thread then polls the
listening socket and the wake pipe; when either is ready it makes the connection's fd
non-blocking and sends SIGALRM to the main thread, so the `recv` returns (EAGAIN after the
EINTR retry, or the data that came meanwhile: nothing is lost) and the main loop polls again.
The fd is made non-blocking only while the main thread is inside that `recv` (checked under
a lock), so answers are never sent on a non-blocking socket. A call that arrives there as one
whole frame runs at once, without a trip through the queue; a plain call runs inline there
(`Dispatcher.run_call`'s plain branch without its frame) and is answered before its record goes
into the journal (`Journal.settle`, right after the send).
"""

import collections
import os
import select
import signal
import socket
import stat
import struct
import threading
import time

from . import wire
from .dispatcher import log
from .framing import AuthDeadlines, FrameConnection, StartupError, auth_timeout
from .live import WAITER
from .operations import error_body

_SIZE = struct.Struct(">I")  # a frame's length prefix
MAX_PATH = 103  # sun_path holds 108 bytes on Linux, 104 on macOS, both with a final NUL


class PipeServer:
    name = "pipe"

    def __init__(self, dispatcher, token, max_frame, path=None):
        if not hasattr(socket, "AF_UNIX"):
            raise StartupError("unsupported", "the pipe transport needs Unix domain sockets here")
        self.dispatcher = dispatcher
        self.calls = dispatcher.operations.table  # op -> function, for the ops that run user code
        self.token = token
        self.max_frame = max_frame
        self.path = path
        self.auth_timeout = auth_timeout()
        self._deadlines = AuthDeadlines(self.auth_timeout)
        self._made_dir = None
        self.sock = None
        self.pending = collections.deque()  # (connection, request) waiting for the main thread
        self._watching = False
        self._arm = threading.Lock()
        self._arm.acquire()
        self._released = threading.Lock()
        self._released.acquire()
        self._only = None  # the connection when there is exactly one, else None
        self._block_lock = threading.Lock()
        self._blocking = False  # the main thread is in (or about to enter) a blocking recv
        self._break = False  # the sentinel saw the listener or the wake pipe ready
        self._sentinel_armed = False  # main thread only
        self._sentinel_arm = threading.Lock()
        self._sentinel_arm.acquire()
        self._rbuf = bytearray(65536)  # `_serve_only` reads into it (main thread only)

    def bind(self):
        if self.path is None:
            self._made_dir = _private_temp_dir()
            self.path = os.path.join(self._made_dir, "backend.sock")
        else:
            self.path = os.path.abspath(self.path)
            if len(os.fsencode(self.path)) > MAX_PATH:
                raise StartupError(
                    "bind_failed",
                    "socket path %s is %d bytes; Unix sockets allow %d (use a shorter --socket path)"
                    % (self.path, len(os.fsencode(self.path)), MAX_PATH),
                )
            _prepare_dir(os.path.dirname(self.path))
            _remove_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: no window with looser modes
        try:
            sock.bind(self.path)
        except OSError as exc:
            raise StartupError("bind_failed", "cannot bind %s: %s" % (self.path, exc)) from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(128)
        sock.setblocking(False)
        self.sock = sock
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        # select.poll, not selectors: the selectors wrapper costs ~7 us per call under load.
        self.poller = select.poll()
        self.targets = {}  # fd -> None (listener), "wake", or a Connection
        self.watch(sock.fileno(), None)
        self.watch(self._wake_r, "wake")
        self._sentinel_poller = select.poll()
        self._sentinel_poller.register(sock.fileno(), select.POLLIN)
        self._sentinel_poller.register(self._wake_r, select.POLLIN)
        self.dispatcher.on_exit.append(self.cleanup)
        self.dispatcher.on_long = self._start_watching
        self.dispatcher.wakers.append(self._wake)
        threading.Thread(target=self._watch_loop, name="pipe-watcher", daemon=True).start()
        if hasattr(signal, "pthread_kill") and hasattr(signal, "SIGALRM"):
            self._main_ident = threading.main_thread().ident
            threading.Thread(target=self._sentinel_loop, name="pipe-sentinel", daemon=True).start()
        else:
            self._sentinel_arm = None
        return self.path

    def cleanup(self):
        try:
            if self.sock is not None:
                self.sock.close()
            os.unlink(self.path)
        except OSError:
            pass
        if self._made_dir is not None:
            try:
                os.rmdir(self._made_dir)
            except OSError:
                pass

    def close(self):
        self.cleanup()

    def watch(self, fd, target):
        self.targets[fd] = target
        self.poller.register(fd, select.POLLIN)
        self._count()

    def unwatch(self, fd):
        self.targets.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except (KeyError, ValueError):
            pass
        self._count()

    def _count(self):
        conns = [t for t in self.targets.values() if isinstance(t, Connection)]
        self._only = conns[0] if len(conns) == 1 else None

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # ---- main thread -----------------------------------------------------------------

    def serve(self):
        """The main loop: run queued requests, then wait for sockets; until `stop`."""
        dispatcher = self.dispatcher
        calls = self.calls
        pending = self.pending
        poll = self.poller.poll
        ready = self._ready
        dispatcher.start_capture()
        try:
            while True:
                while pending and not dispatcher.stopping:
                    conn, req = pending.popleft()
                    self.run(conn, calls[req["op"]], req)
                if dispatcher.stopping:
                    return
                conn = self._only
                if conn is not None and self._sentinel_arm is not None and not self._watching:
                    self._serve_only(conn)
                else:
                    for fd, _ in poll():
                        ready(fd)
        except KeyboardInterrupt:
            log("SIGINT while idle")

    def run(self, conn, fn, req):
        """Run one call on the main thread and answer it."""
        status, body = self.dispatcher.run_call(fn, req)
        if WAITER not in req:  # a streamed request is answered by its follower thread
            conn.reply(req.get("id"), status, body)
        if self._watching:
            self._stop_watching()

    def _serve_only(self, conn):
        """Serve the only connection: block in `recv` on it and run each call right here.

        Returns to `serve` when the sentinel broke in (a new client, a wake-up), when calls
        were queued meanwhile, or when the connection is no longer the only one.
        """
        if not self._sentinel_armed:
            self._sentinel_armed = True
            self._sentinel_arm.release()
        dispatcher = self.dispatcher
        run_call = dispatcher.run_call
        calls = self.calls
        # A plain call runs inline, as `Dispatcher.run_call`'s plain branch does (keep the two
        # alike): without a frame of its own, with what it needs bound here once.
        plain_ops = dispatcher._plain_ops
        journal = dispatcher.journal
        capture = journal.capture
        next_id = journal.numbers.__next__
        live_append = capture.live.append
        live_pop = capture.live.pop
        pending = capture.pending
        settle = journal.settle
        clock = time.time
        tick = dispatcher._start_tick if dispatcher.can_tick else None
        scan = wire.scan
        frame = wire.frame
        plain_int = wire.PLAIN_INT
        pack_size = wire.pack_size
        size_of = _SIZE.unpack_from
        sock = conn.sock
        # Into one buffer of the server's: `recv(65536)` mallocs 64 KiB per call and shrinks
        # it (glibc realloc, ~500 instructions in the real server).
        into = sock.recv_into
        buf = self._rbuf
        sendall = sock.sendall
        write = os.write
        sock_fd = sock.fileno()
        # The locks' methods, not `with`: it looks up `__enter__`/`__exit__` every time.
        send_acquire = conn.lock.acquire
        send_release = conn.lock.release
        block_acquire = self._block_lock.acquire
        block_release = self._block_lock.release
        limit = 4 + self.max_frame
        queued = self.pending
        direct = conn.authed and not conn.buf
        while True:
            size = -1
            self._blocking = True
            try:
                if not self._break:
                    size = into(buf)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                size = 0
            finally:
                block_acquire()
                self._blocking = False
                block_release()
                if self._break:
                    self._break = False
                    self._sentinel_armed = False
                    try:
                        os.set_blocking(conn.sock.fileno(), True)
                    except OSError:
                        pass
            if size < 0:  # the sentinel broke in: let the poll loop run once
                for fd, _ in self.poller.poll(0):
                    self._ready(fd)
                return
            # The common case, inline: one whole frame holding a call, compact JSON starting
            # with `{`. Anything else (several frames, a part of one, whitespace, an error to
            # report) takes the general way, `feed`. (`direct`: authenticated, nothing buffered.)
            req = fn = None
            if size_of(buf)[0] == size - 4 and direct and size <= limit:
                try:
                    text = buf[4:size].decode()
                    req, end = scan(text, 0)
                    if end == len(text):
                        op = req.get("op")  # AttributeError: not an object
                        fn = calls.get(op)  # TypeError: not a string (nor hashable)
                    else:
                        req = None
                except (ValueError, StopIteration, RecursionError, AttributeError, TypeError):
                    req = fn = None
            if fn is not None and "stream" not in req and not dispatcher._stopping:
                if op in plain_ops and "call" not in req:  # a plain call ("stream" is not in it)
                    n, cid = next_id()
                    begun = (n, cid, op, req.get("session"), clock())
                    capture.current = n
                    live_append(begun)  # from here on `Capture.claim` may make it a Call
                    try:
                        try:
                            if not dispatcher._timer_due and tick is not None:
                                tick()
                            dispatcher._running = n
                            try:
                                status, body = fn(req)
                            finally:
                                dispatcher._running = 0
                        except BaseException as exc:
                            status, body = error_body(exc)
                    except BaseException as exc:  # a signal that landed in the bookkeeping
                        status, body = dispatcher.failed(exc)
                    rec = None
                    try:
                        if capture.fd_dirty:  # (a read of the fd thread in progress set it too)
                            capture.fd_check(n)
                        if pending:
                            status, body = dispatcher._end_claimed(n, status, body, begun)
                        else:
                            live_pop()  # IndexError: claimed, a Call now
                            rec = (begun, clock(), status, body)  # (`call`, `seq`: see below)
                    except BaseException as exc:  # claimed, or an interrupt landing here
                        if type(exc) is not IndexError:
                            log("finishing call c%d: %r" % (n, exc))
                        status, body = dispatcher._end_claimed(n, status, body, begun)
                    # Answered first, then its record goes into the journal's ring (off the round
                    # trip). Until then `capture.current` still holds its number: another thread's
                    # `Journal.lookup` waits for the record, output written meanwhile goes to the
                    # log (it was taken back from `Capture.live`), as at any call's end. When the
                    # watcher serves other clients meanwhile (a long call), the record goes first.
                    rid = req.get("id")
                    value = body.get("value")
                    data = None
                    if type(value) is int and type(rid) is int and rec is not None and len(body) == 1:
                        try:  # `wire.frame`'s answer, without its frame, and without `call` and
                            # `seq` in the body (a reader of the record adds them, `_record_call`)
                            data = plain_int % (rid, value, cid.encode())
                        except ValueError:  # an int over the str conversion limit (`frame` says so)
                            pass
                        else:
                            data = pack_size(len(data)) + data
                    if data is None:
                        if rec is not None:
                            body["call"] = cid
                            body["seq"] = 1
                        data = frame(rid, body)
                    watching = self._watching
                    if watching and rec is not None:
                        settle(n, rec)
                        rec = None
                    send_acquire()
                    try:
                        # `os.write` on the socket's fd: ~600 instructions less than `sendall`'s
                        # argument parsing and loop. Only the main thread closes the socket
                        # while no watcher runs (with one, `sendall`: the fd may be gone).
                        if watching:
                            sendall(data)
                        else:
                            sent = write(sock_fd, data)
                            if sent != len(data):  # (a signal cut it short)
                                sendall(data[sent:])
                    except OSError:
                        pass  # the client went away; the next recv sees the end
                    finally:
                        send_release()
                    if rec is not None:  # (after the send: its cost is off the round trip)
                        settle(n, rec)
                    # What this call leaves is freed here, not on the next one's round trip.
                    req = text = data = None
                    if watching:
                        self._stop_watching()
                else:
                    _status, body = run_call(fn, req)
                    data = frame(req.get("id"), body)
                    send_acquire()
                    try:
                        sendall(data)
                    except OSError:
                        pass  # the client went away; the next recv sees the end
                    finally:
                        send_release()
                    if self._watching:
                        self._stop_watching()
            elif req is not None:
                conn.dispatch(req)
            else:
                conn.feed(bytes(buf[:size]))
                direct = conn.authed and not conn.buf
            if queued or self._only is not conn or not self._sentinel_armed or dispatcher._stopping:
                return

    def _sentinel_loop(self):
        """While the main thread blocks on its only connection, watch the listener and wake pipe."""
        while True:
            self._sentinel_arm.acquire()
            try:
                self._sentinel_poller.poll()
            except Exception as exc:
                log("pipe sentinel failed: %r" % exc)
            self._break = True
            with self._block_lock:
                if self._blocking:
                    conn = self._only
                    try:
                        if conn is not None:
                            os.set_blocking(conn.sock.fileno(), False)
                        signal.pthread_kill(self._main_ident, signal.SIGALRM)
                    except (OSError, ValueError):
                        pass

    def _start_watching(self):
        """Called from the SIGALRM handler once a call has run 25-50 ms (`Dispatcher.on_long`)."""
        self._watching = True
        self._arm.release()

    def _stop_watching(self):
        self._watching = False
        self._wake()
        self._released.acquire()  # the watcher is out of select() and no longer reads

    def _watch_loop(self):
        while True:
            self._arm.acquire()
            try:
                while self._watching:
                    for fd, _ in self.poller.poll():
                        if not self._watching:
                            break
                        self._ready(fd)
            except Exception as exc:
                log("pipe watcher failed: %r" % exc)
            finally:
                self._released.release()

    # ---- whichever thread owns the selector ------------------------------------------

    def _ready(self, fd):
        target = self.targets.get(fd, False)
        if target is None:
            self._accept()
        elif target == "wake":
            try:
                os.read(self._wake_r, 4096)
            except OSError:
                pass
        elif target is False:
            self.unwatch(fd)  # closed meanwhile
        else:
            target.readable()

    def _accept(self):
        while True:
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log("pipe accept failed: %s" % exc)
                return
            sock.setblocking(True)
            conn = Connection(self, sock)
            self.watch(sock.fileno(), conn)
            if not conn.authed:
                self._deadlines.add(conn)


class Connection(FrameConnection):
    """A client on the Unix socket (the frame logic is `FrameConnection`'s)."""

    def __init__(self, server, sock):
        FrameConnection.__init__(self, server)
        self.sock = sock
        self.send = sock.sendall

    def send_from_thread(self, data):
        """Send all of `data` from a thread of a streamed request. The socket may be made
        non-blocking for a moment (the sentinel breaking into the main thread's `recv`, see the
        module doc): wait for room then instead of failing."""
        view = memoryview(data)
        sock = self.sock
        while view:
            try:
                n = sock.send(view)
            except (BlockingIOError, InterruptedError):
                select.select([], [sock], [], 1.0)
                continue
            view = view[n:]

    def abort(self):
        try:  # the main thread's recv or poll sees the end and closes it as usual
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def queue_call(self, req):
        self.server.pending.append((self, req))

    def close(self, linger=False):
        if self.closed:
            return
        self.closed = True
        self.server.unwatch(self.sock.fileno())
        if linger:  # let the client read our error frame instead of a reset
            threading.Thread(target=_linger_and_close, args=(self.sock,), daemon=True).start()
        else:
            self.sock.close()

    def readable(self):
        try:
            chunk = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        self.feed(chunk)


def _linger_and_close(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.2)
        total = 0
        while total < (1 << 24):
            chunk = sock.recv(262144)
            if not chunk:
                break
            total += len(chunk)
    except OSError:
        pass
    finally:
        sock.close()


def _private_temp_dir():
    """A fresh 0700 directory under $TMPDIR (not `tempfile`: it imports shutil, random, ...)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    for _ in range(100):
        path = os.path.join(base, "beep-backend-" + os.urandom(8).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)
        return path
    raise StartupError("bind_failed", "cannot create a private directory in %s" % base)


def _prepare_dir(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        os.makedirs(path, mode=0o700)
        os.chmod(path, 0o700)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise StartupError("bad_argument", "the socket's parent %s is not a directory" % path)
    if st.st_uid != os.getuid():
        raise StartupError("insecure_socket_dir", "the socket's directory %s is owned by another user" % path)
    if st.st_mode & 0o077:
        raise StartupError(
            "insecure_socket_dir",
            "the socket's directory %s has mode %o; it must be 0700 (only its owner may enter)"
            % (path, stat.S_IMODE(st.st_mode)),
        )


def _remove_stale(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise StartupError("bind_failed", "%s exists and is not a socket" % path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: a leftover of a dead backend
        return
    finally:
        probe.close()
    raise StartupError("bind_failed", "another server is listening on %s" % path)
