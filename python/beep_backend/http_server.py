"""The HTTP transport: `POST /v1/<op>` and `GET /v1/health`, JSON in and out.

A small HTTP/1.1 server on raw sockets (stdlib `http.server` costs ~15 ms of imports and
sends each response in several writes): one thread per connection, keep-alive,
`Content-Length` bodies only, Nagle off and each response written at once (one `write`
where it fits in the socket's buffer, the rest with `sendall`).
Checks, in order, before anything runs: the `Host` header names this server
(DNS rebinding), no `Origin` header (no web page may call it), the bearer token, the body
size. Bound to 127.0.0.1 only.

Held off: a connection must send each complete request head within the header deadline
(`BEEP_BACKEND_HEADER_TIMEOUT`, 10 s; the first one counted from the connect), so a slow or
silent client is answered 408 and closed; a body or a reader that stalls that long is cut
too. A kept-alive connection idle between requests for `BEEP_BACKEND_IDLE_TIMEOUT` (60 s) is
closed. At most `BEEP_BACKEND_MAX_CONNECTIONS` (64) connections are served at once. At the cap
a new connection takes the place of the oldest one that has not yet sent a request with the
token (so whoever holds connections open without the token keeps no one out); when every
connection has, the new one is answered 503 by the accept loop and closed, without a thread.
"""

import collections
import os
import socket
import threading
import time

from . import wire
from .auth import compare_digest
from .log import log

MAX_HEAD = 64 * 1024
_WRITE_FD = os.name == "posix"  # a socket is a file descriptor `os.write` takes (not on Windows)
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds to send a complete request head
DEFAULT_IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may wait for its next request
DEFAULT_MAX_CONNECTIONS = 64
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    409: "Conflict",
    422: "Unprocessable Entity",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# An answer: status, length, `Connection: close` or nothing, the JSON body (by status).
_ANSWER = {
    status: b"HTTP/1.1 %%d %s\r\nContent-Type: application/json\r\nContent-Length: %%d\r\n%%s\r\n%%s"
    % reason.encode()
    for status, reason in [*REASONS.items(), (None, "Error")]
}


class _Close(Exception):
    """Answer sent (or not possible); close the connection."""


def _env_number(name, default, kind=float):
    """The positive number in the environment variable `name`, else `default`."""
    try:
        value = kind(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class HttpServer:
    name = "http"

    def __init__(self, dispatcher, token, max_body, port=0):
        self.dispatcher = dispatcher
        self.token = token
        self.max_body = max_body
        self.port = port
        self.sock = None
        self.header_timeout = _env_number("BEEP_BACKEND_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT)
        self.idle_timeout = _env_number("BEEP_BACKEND_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT)
        self.max_connections = _env_number("BEEP_BACKEND_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, int)
        self.connections = 0  # being served; only the accept loop adds, threads take away
        # Connections that have not yet sent a request with the token, oldest first; at the cap
        # the oldest is closed for a new one. `evicting`: closed so, their threads not yet gone.
        self.unproven = collections.OrderedDict()
        self.evicting = 0
        self._evicted_logged = 0.0
        self.count_lock = threading.Lock()

    def bind(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.sock = sock
        self.hosts = {b"127.0.0.1:%d" % self.port, b"localhost:%d" % self.port}
        self.bearer = b"bearer " + self.token if self.token is not None else None
        threading.Thread(target=self._accept_loop, name="http-accept", daemon=True).start()
        return "127.0.0.1:%d" % self.port

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError as exc:
                if self.sock.fileno() < 0:
                    return  # closed
                log("http: accept failed: %s" % exc)  # e.g. out of file descriptors
                time.sleep(0.05)
                continue
            connection = _Connection(self, conn)
            victim = None
            with self.count_lock:
                full = self.connections >= self.max_connections
                if full and self.unproven and self.evicting < self.max_connections:
                    # Under the lock: its thread closes the socket only after `_gone`.
                    _, victim = self.unproven.popitem(last=False)
                    victim.evict()
                    self.evicting += 1
                    full = False
                if not full:
                    self.connections += 1
                    self.unproven[connection] = connection
            if victim is not None:
                self._evicted()
            if full:
                self._refuse(conn)
                continue
            try:
                threading.Thread(target=self._serve, args=(connection,), daemon=True).start()
            except RuntimeError:  # no thread to be had
                self._gone(connection)
                self._refuse(conn)

    def _refuse(self, conn):
        """Over the cap: answer 503 and close, on the accept thread, never blocking."""
        body = wire.dumps(
            wire.error("Unavailable", "too many connections (at most %d); retry later" % self.max_connections)
        )
        try:
            conn.setblocking(False)
            conn.send(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            conn.shutdown(socket.SHUT_WR)
            conn.recv(65536)  # what the client sent already: unread data would reset the answer
        except OSError:
            pass
        finally:
            conn.close()

    def _gone(self, connection):
        with self.count_lock:
            self.connections -= 1
            if connection.evicted:
                self.evicting -= 1
            else:
                self.unproven.pop(connection, None)

    def _proven(self, connection):
        """(Its thread) `connection` sent a request with the token: it is never evicted."""
        with self.count_lock:
            self.unproven.pop(connection, None)
        connection.proven = True

    def _evicted(self):
        now = time.monotonic()
        if now - self._evicted_logged >= 10.0:  # (a flood of connections logs once in a while)
            self._evicted_logged = now
            log(
                "http: %d connections at once (the cap): closed the oldest that had sent no "
                "request with the token, for a new one" % self.max_connections
            )

    def _serve(self, connection):
        conn = connection.sock
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.run()
        except (_Close, OSError):
            pass
        except Exception as exc:  # a bug here must not take the server down
            log("http connection failed: %r" % exc)
        finally:
            self._gone(connection)
            try:
                conn.close()
            except OSError:
                pass


class _Connection:
    proven = False  # it sent a request with the token (see `HttpServer.unproven`)
    evicted = False  # closed at the cap for a newer connection

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.buf = b""
        self.timeout = sock.gettimeout()

    def evict(self):
        """(The accept loop, under `count_lock`) Close this connection for a newer one: its
        thread's read ends, and it goes."""
        self.evicted = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def respond(self, status, body, keep_alive=True):
        data = wire.dumps(body)
        data = _ANSWER.get(status, _ANSWER[None]) % (
            status,
            len(data),
            b"" if keep_alive else b"Connection: close\r\n",
            data,
        )
        sent = 0
        if _WRITE_FD:
            # The socket has a timeout, so its fd is non-blocking: an answer that fits in the
            # socket's buffer (nearly all) goes out in one write, without the `poll` that
            # `sendall` makes before it.
            try:
                sent = os.write(self.sock.fileno(), data)
            except BlockingIOError:
                pass
        if sent < len(data):
            self.sock.sendall(memoryview(data)[sent:])

    def fail(self, status, kind, message, close=False):
        self.respond(status, wire.error(kind, message), keep_alive=not close)
        if close:
            self.linger()
            raise _Close

    def linger(self):
        """Half-close and drain a little, so the client reads our answer instead of a reset."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self._wait(0.5)
            total = 0
            until = time.monotonic() + 2.0  # a client that keeps sending does not keep us
            while total < 4 * self.server.max_body + MAX_HEAD and time.monotonic() < until:
                chunk = self.sock.recv(262144)
                if not chunk:
                    break
                total += len(chunk)
        except OSError:
            pass

    def _wait(self, seconds):
        """The socket's timeout, set only when it changes (each `settimeout` is a system call)."""
        if seconds != self.timeout:
            self.sock.settimeout(seconds)
            self.timeout = seconds

    def read_head(self, first):
        """The next request head. The first one of a connection must be complete within the
        header deadline from the connect; later ones may wait the idle timeout for their first
        byte, then have the header deadline to complete."""
        server = self.server
        if first or self.buf:
            return self._read_head(time.monotonic() + server.header_timeout, None)
        if self.timeout != server.header_timeout or server.header_timeout > server.idle_timeout:
            return self._read_head(None, time.monotonic() + server.idle_timeout)
        # Between requests, the common case: the socket's timeout is the header deadline (the
        # last request's answer went out with it), no shorter than the idle timeout, so the
        # first wait for the next request needs neither a clock read nor a `settimeout`.
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:  # idle for the header deadline: the rest of the idle timeout
            return self._read_head(None, time.monotonic() + server.idle_timeout - server.header_timeout)
        if not chunk:
            raise _Close
        end = chunk.find(b"\r\n\r\n")
        if end >= 0:  # the whole head in one read: nearly every request
            self.buf = chunk[end + 4 :]
            return chunk[:end]
        self.buf = chunk
        return self._read_head(time.monotonic() + server.header_timeout, None)

    def _read_head(self, deadline, idle_until):
        """`read_head`, waiting until `deadline` (monotonic) for the rest of a head, or while
        there is none (`deadline` None) until `idle_until` for its first byte."""
        server = self.server
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end]
                self.buf = self.buf[end + 4 :]
                self._wait(server.header_timeout)  # body and answer: no stall that long
                return head
            if len(self.buf) > MAX_HEAD:
                self.fail(431, "BadRequest", "request head over %d bytes" % MAX_HEAD, close=True)
            if deadline is None:
                # Idle between requests: waits of the header deadline (the timeout the last
                # answer was sent with, so a busy connection sets none) until the idle timeout.
                left = idle_until - time.monotonic()
                if left <= 0:
                    raise _Close  # idle keep-alive connection: close quietly
                self._wait(server.header_timeout if left >= server.header_timeout else left)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._wait(1.0)
                    self.fail(
                        408,
                        "RequestTimeout",
                        "no complete request head within %g s" % server.header_timeout,
                        close=True,
                    )
                self._wait(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue  # the idle timeout or the deadline passed: handled above
            if not chunk:
                if self.buf.strip():
                    log("http: connection closed inside a request head")
                raise _Close
            self.buf += chunk
            if deadline is None:
                deadline = time.monotonic() + server.header_timeout

    def read_body(self, length, keep=True):
        chunks = [self.buf[:length]]
        have = len(chunks[0])
        self.buf = self.buf[length:]
        while have < length:
            chunk = self.sock.recv(min(length - have, 1 << 20))
            if not chunk:
                raise _Close
            have += len(chunk)
            if keep:
                chunks.append(chunk)
        return b"".join(chunks) if keep else b""

    def run(self):
        server = self.server
        first = True
        while True:
            head = self.read_head(first)
            first = False
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                self.fail(400, "BadRequest", "malformed request line", close=True)
            method, target, version = parts
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                name = name.strip().lower()
                if not sep or not name or name in headers:
                    self.fail(400, "BadRequest", "malformed or repeated header", close=True)
                headers[name] = value.strip()
            connection = headers.get(b"connection", b"").lower()
            keep_alive = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
            if b"transfer-encoding" in headers:
                self.fail(411, "BadRequest", "send a Content-Length body (no Transfer-Encoding)", close=True)
            length = headers.get(b"content-length", b"0")
            if not length.isdigit() or len(length) > 15:
                self.fail(400, "BadRequest", "bad Content-Length", close=True)
            length = int(length)
            if length > server.max_body:
                self.fail(
                    413,
                    "PayloadTooLarge",
                    "body of %d bytes over the cap of %d" % (length, server.max_body),
                    True,
                )

            expect = headers.get(b"expect", b"").lower() == b"100-continue"
            problem = self.check(method, target, headers)
            if problem is not None:
                if expect:  # the client waits for our word before it sends the body: none comes
                    self.respond(*problem, keep_alive=False)
                    raise _Close
                self.read_body(length, keep=False)  # discard it; nothing runs
                self.respond(*problem, keep_alive=keep_alive)
            else:
                if not self.proven:
                    server._proven(self)
                if expect:
                    self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = self.read_body(length)
                if target.startswith(b"/venv/"):
                    self.respond(*_forward(method, target, body), keep_alive=keep_alive)
                else:
                    op = target.split(b"?", 1)[0][4:].decode("ascii", "replace")
                    # (`find`, not `in`: `bytes in bytes` first tries the operand as an int,
                    # a TypeError made and cleared on every request)
                    accept = headers.get(b"accept")
                    if method == b"GET" or (accept is not None and accept.find(b"text/event-stream") >= 0):
                        self.handle_live(op, target, headers, body)  # closes the connection
                    self.handle(op, body, keep_alive)
            if not keep_alive:
                raise _Close

    def check(self, method, target, headers):
        """`(status, body)` if the request must be refused, else None."""
        server = self.server
        if headers.get(b"host") not in server.hosts:
            return 403, wire.error("Forbidden", "the Host header must be 127.0.0.1:PORT or localhost:PORT")
        if b"origin" in headers:
            return 403, wire.error("Forbidden", "requests with an Origin header are refused")
        if server.bearer is not None:
            given = headers.get(b"authorization")
            if given is not None:  # the scheme is case-insensitive (RFC 7235), the token is not
                given = given[:7].lower() + given[7:]
            if given is None or not compare_digest(given, server.bearer):
                return 401, wire.error("Unauthorized", "missing or wrong bearer token")
        path = target.split(b"?", 1)[0]
        if path.startswith(b"/venv/"):
            return _check_forward(method, path)
        if not path.startswith(b"/v1/"):
            return 404, wire.error("NotFound", "no such path; use POST /v1/<op> or GET /v1/health")
        op = path[4:].decode("ascii", "replace")
        if op == "health":
            if method not in (b"GET", b"POST"):
                return 405, wire.error("MethodNotAllowed", "use GET /v1/health")
            return None
        if not server.dispatcher.is_known(op):
            if op.startswith("calls/") and op.endswith("/events") and len(op) > 13:
                if method != b"GET":
                    return 405, wire.error("MethodNotAllowed", "use GET /v1/%s" % op[:200])
                return None
            return 404, wire.error("UnknownOperation", "unknown op `%s`" % op[:100])
        if method != b"POST":
            if op == "calls":  # GET (or POST) /v1/calls
                if method == b"GET":
                    return None
                return 405, wire.error("MethodNotAllowed", "use GET /v1/calls")
            return 405, wire.error("MethodNotAllowed", "use POST /v1/%s" % op)
        return None

    def handle(self, op, body, keep_alive):
        dispatcher = self.server.dispatcher
        if op == "health":
            self.respond(200, {"value": {"status": "ok", "busy": dispatcher.busy}}, keep_alive)
            return
        if body.strip():
            try:
                req = wire.loads(body)
            except ValueError as exc:
                log("http: %s" % exc)
                self.respond(400, wire.error("BadRequest", str(exc)), keep_alive)
                return
        else:
            req = {}
        req["op"] = op
        done = threading.Lock()
        done.acquire()
        respond = self.respond

        broken = []

        def reply(status, answer):
            try:
                respond(status, answer, keep_alive)
            except OSError:
                broken.append(True)  # the client went away, or stopped reading
            finally:
                done.release()

        dispatcher.submit(req, reply)
        done.acquire()
        if broken:
            raise _Close

    def handle_live(self, op, target, headers, body):
        """`GET /v1/calls`, and the SSE answers: a call op or `attach` with `Accept:
        text/event-stream`, and `GET /v1/calls/{call}/events`. Returns only for what is not
        one of those (answered by `handle`); else closes the connection when done."""
        from .live import LIVE_OPS

        dispatcher = self.server.dispatcher
        query = _query(target)
        if op == "calls":
            req = {"op": "calls", "session": query.get("session")}
            if "all" in query:
                req["all"] = query["all"] not in ("", "0", "false")
            try:
                status, answer = dispatcher.op_calls(req)
            except Exception as exc:  # OpError
                status, answer = getattr(exc, "status", 400), exc.body()
            self.respond(status, answer, keep_alive=False)
            raise _Close
        if op.startswith("calls/"):
            after = query.get("after")
            if after is None:
                after = headers.get(b"last-event-id", b"0").decode("ascii", "replace").strip() or "0"
            if not after.isdigit():
                self.respond(
                    400, wire.error("BadRequest", "`after` must be an integer >= 0"), keep_alive=False
                )
                raise _Close
            req = {"op": "attach", "call": op[6:-7], "after": int(after)}
            self._sse(lambda emit: dispatcher.attach(req, emit))
        if not (op in LIVE_OPS or op == "attach"):
            return
        if body.strip():
            try:
                req = wire.loads(body)
            except ValueError as exc:
                self.respond(400, wire.error("BadRequest", str(exc)), keep_alive=False)
                raise _Close from None
        else:
            req = {}
        req["op"] = op
        if op == "attach":
            self._sse(lambda emit: dispatcher.attach(req, emit))
        waiter = dispatcher.prepare_stream(req)
        dispatcher.submit(req, _ignore)
        self._sse(lambda emit: dispatcher.follow(waiter, emit))

    def _sse(self, follow):
        """Answer with server-sent events from `follow(emit)`, then close the connection."""
        sock = self.sock
        started = []

        def start():
            started.append(True)
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Connection: close\r\n\r\n"
            )

        def emit(event):
            if not started:
                start()
            seq = event["seq"] if "seq" in event else event["seq_to"]
            sock.sendall(
                b"event: %s\nid: %d\ndata: %s\n\n" % (event["event"].encode(), seq, wire.dumps(event))
            )

        status, end = follow(emit)
        if not started:
            if "call" not in end:  # refused before it ran: a plain answer
                self.respond(status, end, keep_alive=False)
                raise _Close
            start()
        sock.sendall(b"event: result\nid: %d\ndata: %s\n\n" % (end.get("seq", 0), wire.dumps(end)))
        raise _Close


def _ignore(status, body):
    pass


def _query(target):
    """The query string of `target` as a dict of str (no repeated keys, `%xx` decoded)."""
    _, _, query = target.partition(b"?")
    out = {}
    if not query:
        return out
    from urllib.parse import unquote

    for part in query.decode("ascii", "replace").split("&"):
        key, _, value = part.partition("=")
        out[unquote(key)] = unquote(value)
    return out


# Environment management forwarded to the host API (`beep_backend.host`), so a client that
# only knows this backend can manage environments: POST /venv/create, GET /venv/list,
# DELETE /venv/{name}. The answers are the host's own (`{"path", "success"}`, or
# `{"code", "message"}` on error).
def _check_forward(method, path):
    if path == b"/venv/create":
        allowed = b"POST"
    elif path == b"/venv/list":
        allowed = b"GET"
    elif path.count(b"/") == 2 and len(path) > len(b"/venv/"):
        allowed = b"DELETE"
    else:
        routes = "POST /venv/create, GET /venv/list, DELETE /venv/{name}"
        return 404, wire.error("NotFound", "forwarded routes: " + routes)
    if method != allowed:
        route = path.decode("ascii", "replace")
        return 405, wire.error("MethodNotAllowed", "use %s %s" % (allowed.decode(), route))
    return None


def _forward(method, target, body):
    from beep_backend import host  # only backends that forward pay for the import

    try:
        payload = wire.loads(body) if body.strip() else None
    except ValueError as exc:
        return 400, {"code": "invalid", "message": str(exc)}
    try:
        status, answer = host.request(method.decode(), target.decode("ascii", "replace"), payload)
    except host.HostUnavailable as exc:
        return 503, {"code": "unavailable", "message": exc.message}
    if not isinstance(answer, (dict, list)):
        answer = {"code": "failed", "message": str(answer)}
    return status, answer
