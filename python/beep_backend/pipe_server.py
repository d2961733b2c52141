"""The pipe transport: a Unix domain socket, frames of a 4-byte big-endian length + JSON.

One thread per connection reads frames; answers are written under a per-connection lock
(by the main thread for queued calls), so a client may pipeline requests.
"""

import os
import socket
import stat
import sys
import tempfile
import threading

from . import wire
from .dispatcher import log

PRE_AUTH_CAP = 64 * 1024  # the auth frame is tiny; do not buffer more before it
AUTH_TIMEOUT = 10.0


class StartupError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class FrameTooLarge(Exception):
    pass


class FrameReader:
    """Length-prefixed frames from a socket; `None` at a clean end of stream."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def next(self, cap):
        buf = self.buf
        while True:
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if size > cap:
                    raise FrameTooLarge(size)
                if len(buf) >= 4 + size:
                    frame = bytes(buf[4 : 4 + size])
                    del buf[: 4 + size]
                    return frame
            chunk = self.sock.recv(262144)
            if not chunk:
                if buf:
                    raise EOFError("connection closed inside a frame")
                return None
            buf += chunk


class PipeServer:
    name = "pipe"

    def __init__(self, dispatcher, token, max_frame, path=None):
        if sys.platform == "win32":
            raise StartupError(
                "unsupported",
                "the pipe transport is not implemented on Windows yet; use --transport http or grpc",
            )
        self.dispatcher = dispatcher
        self.token = token
        self.max_frame = max_frame
        self.path = path
        self._made_dir = None
        self.sock = None

    def bind(self):
        if self.path is None:
            self._made_dir = tempfile.mkdtemp(prefix="beep-backend-")
            os.chmod(self._made_dir, 0o700)
            self.path = os.path.join(self._made_dir, "backend.sock")
        else:
            self.path = os.path.abspath(self.path)
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
        self.sock = sock
        self.dispatcher.on_exit.append(self.cleanup)
        threading.Thread(target=self._accept_loop, name="pipe-accept", daemon=True).start()
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

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            Connection(self, conn).run()
        except (OSError, EOFError) as exc:
            log("pipe connection ended: %s" % exc)
        except Exception as exc:  # a bug here must not take the server down
            log("pipe connection failed: %r" % exc)
        finally:
            try:
                conn.close()
            except OSError:
                pass


class Connection:
    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.lock = threading.Lock()
        self.reader = FrameReader(sock)

    def send(self, rid, status, body):
        answer = {"id": rid}
        answer.update(body)
        data = wire.dumps(answer)
        with self.lock:
            self.sock.sendall(len(data).to_bytes(4, "big") + data)

    def linger(self):
        """Half-close and drain briefly, so the client reads our error frame instead of a reset."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(0.2)
            total = 0
            while total < (1 << 24):
                chunk = self.sock.recv(262144)
                if not chunk:
                    break
                total += len(chunk)
        except OSError:
            pass

    def run(self):
        if not self.authenticate():
            self.linger()
            return
        submit = self.server.dispatcher.submit
        cap = self.server.max_frame
        while True:
            try:
                frame = self.reader.next(cap)
            except FrameTooLarge as exc:
                self.send(None, 413, wire.error("FrameTooLarge", "frame of %d bytes over the cap of %d" % (exc.args[0], cap)))
                self.linger()
                return
            if frame is None:
                return
            self.handle(frame, submit)

    def handle(self, frame, submit):
        try:
            req = wire.loads(frame)
        except ValueError as exc:
            log("unparseable frame: %s" % exc)
            self.send(None, 400, wire.error("BadRequest", str(exc)))
            return
        rid = req.get("id")
        if type(rid) not in (int, str) and rid is not None:
            rid = None
        if req.get("op") == "auth":
            self.send(rid, 200, {"value": True})
            return

        def reply(status, body, rid=rid, send=self.send):
            try:
                send(rid, status, body)
            except OSError:
                pass  # the client went away

        submit(req, reply)

    def authenticate(self):
        """Read the first frame; True if it authenticates (or no token is required)."""
        token = self.server.token
        self.sock.settimeout(AUTH_TIMEOUT)
        try:
            frame = self.reader.next(PRE_AUTH_CAP)
        except FrameTooLarge:
            self.send(None, 401, wire.error("Unauthorized", "the first frame must be a small auth frame"))
            return False
        except socket.timeout:
            return False
        if frame is None:
            return False
        self.sock.settimeout(None)
        try:
            req = wire.loads(frame)
        except ValueError:
            self.send(None, 401, wire.error("Unauthorized", "the first frame must be {\"op\": \"auth\", \"token\": ...}"))
            return False
        rid = req.get("id")
        if type(rid) not in (int, str):
            rid = None
        if token is None:
            if req.get("op") == "auth":
                self.send(rid, 200, {"value": True})
            else:
                self.handle(frame, self.server.dispatcher.submit)
            return True
        given = req.get("token")
        if req.get("op") == "auth" and type(given) is str and _compare(given.encode("utf-8", "replace"), token):
            self.send(rid, 200, {"value": True})
            return True
        self.send(rid, 401, wire.error("Unauthorized", "missing or wrong token"))
        return False


def _compare(a, b):
    from .auth import compare_digest

    return compare_digest(a, b)


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
