"""Live calls: call ids, per-call output capture, the journal, and readers that follow a call.

Everything that runs user code is a *call* (`Journal.begin` on the main thread, before the op
runs; `Journal.finish` after). While a call runs:

- `sys.stdout`/`sys.stderr` are `_Stream` proxies (installed once, at the start of the main
  loop) that append the text to the running call's pending output.
- fd 1 and fd 2 are the write ends of two pipes (dup2'd once, not per call); a reader thread
  moves what arrives to the running call, or to the log (the server's real stderr, kept as
  another fd) when no call runs. At the end of a call the main thread reads what is left in
  the pipes itself (one `poll(0)`), so output written during the call is never given to the
  next one. On Windows (no `select.poll`) the pipes are peeked instead (`winfd.py`).
- A flusher thread turns pending output into events at the latest ~20 ms after it was written;
  a writer that has 64 KiB pending flushes it itself.

The journal keeps, per call, its events (bounded by bytes, oldest dropped first) and its end;
the calls themselves are bounded too (the oldest finished call goes first). Readers (`follow`)
run on their own threads and wait on one condition; the main thread only notifies it when
someone waits.
"""

import itertools
import os
import sys
import threading
import time
from array import array
from collections import deque

from .log import log, set_log_fd
from .operations import OpError, bad_request

DEFAULT_JOURNAL_BYTES = 4 * 1024 * 1024
DEFAULT_JOURNAL_CALLS = 256
CHUNK = 64 * 1024  # pending output flushed at once from this size
FLUSH_DELAY = 0.02  # seconds the flusher waits after the first pending byte
MAX_ID = 128
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
STREAMS = ("stdout", "stderr")
# The ops that run user code (the others have no call id).
LIVE_OPS = frozenset(("exec", "eval", "import", "create", "call", "getattr", "setattr"))
# A request dict's key for a `Waiter` (not a string: no JSON request can carry it).
WAITER = object()


def _env_int(name, default):
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def check_call_id(cid):
    if type(cid) is not str or not 0 < len(cid) <= MAX_ID or not _ID_CHARS.issuperset(cid):
        raise bad_request("`call` must be 1 to %d characters of A-Z a-z 0-9 . _ : -" % MAX_ID)
    return cid


class Call:
    """One call: what it is, its state, its journal (events and end).

    No `__slots__`: the fields most calls never change are class defaults, so opening a call
    sets few attributes (this is on the path of every `eval`).
    """

    status = 0  # the answer's HTTP status once ended
    ended = None  # time.time() at the end
    events = None  # deque of (seq, stream index, data, bytes), made with the first output
    next_seq = 1
    kept_bytes = 0
    output_bytes = 0
    dropped_to = 0  # events 1..dropped_to are gone from the journal
    dropped_cum = None  # array: cumulative bytes through each dropped seq
    end = None  # the answer body once the call ended
    pending_size = 0
    closed = False  # ended: late writes go to the log
    keep = None  # ([stdout texts], [stderr texts]) for an unstreamed exec

    def __init__(self, cid, op, session):
        self.id = cid
        self.op = op
        self.session = session if type(session) is str and session else "default"
        self.pending = []  # (stream index, text) not yet events; appended without a lock
        self.started = time.time()

    @property
    def state(self):
        end = self.end
        if end is None:
            return "running"
        error = end.get("error")
        if error is None:
            return "done"
        if error.get("type") == "KeyboardInterrupt":
            return "interrupted"
        return "timed_out" if self.status == 408 else "failed"

    @property
    def duration(self):
        return None if self.ended is None else self.ended - self.started

    def row(self):
        return {
            "call": self.id,
            "op": self.op,
            "session": self.session,
            "state": self.state,
            "started": self.started,
            "duration": self.duration,
            "output_bytes": self.output_bytes,
        }


class Waiter:
    """A streamed request's link to its call, which exists only once the main thread runs it."""

    __slots__ = ("call", "refused")

    def __init__(self):
        self.call = None
        self.refused = None  # (status, body) when the request was refused before it became a call


class Journal:
    def __init__(self):
        self.calls = {}  # id -> Call, oldest first
        self.order = deque()  # the ids in `calls`, oldest first (a dict's first key is not O(1))
        self.ids = map("c{}".format, itertools.count(1))  # the server's call ids: next(ids)
        self._taken_c = False  # a client named a call like the server's ids (`c12`)
        self.cond = threading.Condition(threading.Lock())
        self.waiters = 0  # readers waiting on `cond`
        self.max_bytes = _env_int("BEEP_BACKEND_JOURNAL_BYTES", DEFAULT_JOURNAL_BYTES)
        self.max_calls = _env_int("BEEP_BACKEND_JOURNAL_CALLS", DEFAULT_JOURNAL_CALLS)
        self.capture = Capture(self)

    # ---- main thread -------------------------------------------------------------------

    @property
    def current(self):
        """The running call, or None."""
        return self.capture.current

    def begin(self, req, op):
        """Open the call of `req` and make it the one output goes to (raises OpError)."""
        calls = self.calls
        cid = req.get("call")
        if cid is None:
            cid = next(self.ids)
            while cid in calls:  # a client took this id for one of its calls
                cid = next(self.ids)
            call = Call(cid, req["op"], req.get("session"))
            if len(req) > 3 or op == "exec":  # more than id, op and the op's field: maybe streamed
                self._options(req, op, call)
        else:
            check_call_id(cid)
            if cid in calls:
                raise OpError(409, "CallExists", "call `%s` exists already" % cid)
            if cid[0] == "c" and cid[1:].isdigit():
                self._taken_c = True
            call = Call(cid, req["op"], req.get("session"))
            self._options(req, op, call)
        calls[cid] = call
        order = self.order
        order.append(cid)
        if len(order) > self.max_calls:
            self.trim()
        self.capture.current = call
        return call

    def trim(self):
        """Forget the oldest calls over the bound, unless the oldest still runs (a bound of one
        call). Ids of calls dropped with their session are skipped."""
        calls = self.calls
        order = self.order
        while len(order) > self.max_calls:
            first = calls.get(order[0])
            if first is not None and first.end is None:
                return
            cid = order.popleft()
            if first is not None:
                del calls[cid]

    def notify(self):
        with self.cond:
            self.cond.notify_all()

    def _options(self, req, op, call):
        waiter = req.get(WAITER)
        if waiter is not None:
            with self.cond:
                waiter.call = call
                self.cond.notify_all()
        elif op == "exec" and not req.get("stream"):
            call.keep = ([], [])

    def finish(self, call, status, body):
        """End `call` with its answer; returns the `(status, body)` to send."""
        self.capture.end(call)
        call.ended = time.time()
        call.status = status
        body["call"] = call.id
        body["seq"] = call.next_seq
        answer = body
        if call.op == "exec":
            body["stdout"] = body["stderr"] = ""
            keep = call.keep
            if keep is not None:  # unstreamed: all of its output in the answer, as before
                answer = dict(body)
                answer["stdout"] = "".join(keep[0])
                answer["stderr"] = "".join(keep[1])
                call.keep = None
        call.end = body
        if self.waiters:
            with self.cond:
                self.cond.notify_all()
        return status, answer

    # ---- any thread --------------------------------------------------------------------

    def add_output(self, call, parts):
        """Append pending `(stream, text)` parts of `call` as events (caller holds the flush lock)."""
        # Merge neighbours of the same stream, up to CHUNK characters per event.
        events = []
        stream = -1
        buf = []
        size = 0
        for s, text in parts:
            if s != stream or size >= CHUNK:
                if buf:
                    events.append((stream, "".join(buf)))
                stream, buf, size = s, [], 0
            buf.append(text)
            size += len(text)
        if buf:
            events.append((stream, "".join(buf)))
        keep = call.keep
        if keep is not None:  # an unstreamed exec answers with all of its output
            for s, data in events:
                keep[s].append(data)
        with self.cond:
            if call.events is None:
                call.events = deque()
            for s, data in events:
                if not data:
                    continue
                n = len(data.encode("utf-8", "surrogatepass"))
                seq = call.next_seq
                call.next_seq = seq + 1
                call.events.append((seq, s, data, n))
                call.kept_bytes += n
                call.output_bytes += n
            if call.kept_bytes > self.max_bytes:
                self._drop(call)
            if self.waiters:
                self.cond.notify_all()

    def _drop(self, call):
        events = call.events
        cum = call.dropped_cum
        if cum is None:
            cum = call.dropped_cum = array("Q")
        total = cum[-1] if cum else 0
        while events and call.kept_bytes > self.max_bytes:
            seq, _s, _d, n = events.popleft()
            call.kept_bytes -= n
            total += n
            cum.append(total)
            call.dropped_to = seq

    def find(self, cid):
        if type(cid) is not str:
            raise bad_request("`call` must be a string")
        call = self.calls.get(cid)
        if call is None:
            raise OpError(404, "UnknownCall", "no call `%s` in the journal" % cid[:MAX_ID])
        return call

    def rows(self, session, every):
        return [c.row() for c in list(self.calls.values()) if every or c.session == session]

    def drop_session(self, name):
        for cid, call in list(self.calls.items()):
            if call.session == name and call.end is not None:
                self.calls.pop(cid, None)

    def wait_for_call(self, waiter, alive=None):
        """(Reader) Wait until the main thread took up the request: its Call, or None if refused."""
        with self.cond:
            while waiter.call is None and waiter.refused is None:
                self.waiters += 1
                try:
                    self.cond.wait(1.0)
                finally:
                    self.waiters -= 1
                if alive is not None and not alive():
                    return None
        return waiter.call

    def refuse(self, waiter, status, body):
        with self.cond:
            waiter.refused = (status, body)
            self.cond.notify_all()

    def follow(self, call, after, emit, alive=None):
        """(Reader) `emit(event)` for every event after `after`, live until the end; return the end.

        Returns None when `alive()` turned false (the reader's client went away).
        """
        cursor = after
        cond = self.cond
        cid = call.id
        while True:
            out = []
            with cond:
                while True:
                    if cursor < call.dropped_to:
                        cum = call.dropped_cum
                        lost = cum[-1] - (cum[cursor - 1] if cursor >= 1 else 0)
                        out.append(
                            {
                                "event": "dropped",
                                "call": cid,
                                "seq_from": cursor + 1,
                                "seq_to": call.dropped_to,
                                "bytes": lost,
                            }
                        )
                        cursor = call.dropped_to
                    events = call.events
                    if events and events[-1][0] > cursor:
                        start = cursor + 1 - events[0][0]
                        if start < 0:
                            start = 0
                        for i in range(start, len(events)):
                            seq, s, data, _n = events[i]
                            out.append(
                                {
                                    "event": "output",
                                    "call": cid,
                                    "stream": STREAMS[s],
                                    "seq": seq,
                                    "data": data,
                                }
                            )
                            cursor = seq
                    if out:
                        break
                    if call.end is not None:
                        return call.end
                    self.waiters += 1
                    try:
                        cond.wait(1.0)
                    finally:
                        self.waiters -= 1
                    if alive is not None and not alive():
                        return None
            for event in out:
                emit(event)


class _Stream:
    """`sys.stdout`/`sys.stderr` while the server runs: text goes to the running call."""

    encoding = "utf-8"
    errors = "replace"
    newlines = None
    closed = False
    line_buffering = True

    def __init__(self, capture, index):
        self._capture = capture
        self._index = index
        self.buffer = _Bytes(self)

    @property
    def name(self):
        return "<%s>" % STREAMS[self._index]

    def write(self, text):
        # The hot path of `print`: no lock (list appends are atomic; see `Capture.flush`).
        if type(text) is not str:
            if not isinstance(text, str):
                raise TypeError("write() argument must be str, not %s" % type(text).__name__)
            text = str(text)
        capture = self._capture
        call = capture.current
        if call is None:
            capture.to_log(text)
            return len(text)
        call.pending.append((self._index, text))
        size = call.pending_size = call.pending_size + len(text)
        if size >= CHUNK:
            capture.flush(call)
        elif not capture.armed:
            capture.arm()
        if call.closed:  # it ended meanwhile (a write from another thread): to the log
            capture.late(call)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False

    def fileno(self):
        return self._index + 1  # fd 1/2: captured too (where the platform allows)


class _Bytes:
    """`sys.stdout.buffer`: bytes written there are decoded (UTF-8, replace) and captured."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, data):
        self._stream.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self):
        pass

    def fileno(self):
        return self._stream.fileno()


class Capture:
    def __init__(self, journal):
        self.journal = journal
        self.current = None
        self.flush_lock = threading.Lock()  # pending -> events, in order
        self.fd_lock = threading.Lock()  # reading the fd pipes
        self.armed = False
        self.wake = threading.Event()
        self.started = False
        self.prepared = False
        self._writers = None  # the pipes' write ends until `start` puts them on fd 1/2
        self._after_dup2 = None  # Windows: make the std handles follow fd 1/2
        self.fds = None  # (read end for fd 1, read end for fd 2) when fd 1/2 are captured
        self.probe = None  # poll(0) of those, for the main thread
        self.log_fd = 2
        self.streams = None
        self.stdout = self.stderr = None  # the proxies once started

    def prepare(self):
        """(Before the ready line) Make the fd pipes and start the threads, so the process has
        all of its threads by the time clients come."""
        if self.prepared:
            return
        self.prepared = True
        if _can_capture_fds():
            try:
                self._prepare_fds()
            except OSError as exc:
                log("fd 1/2 are not captured: %s" % exc)
        threading.Thread(target=self._flush_loop, name="live-flush", daemon=True).start()

    def start(self):
        """(Main thread, after the ready line) Capture: the proxies and the fd pipes."""
        if self.started:
            return
        self.prepare()
        self.started = True
        self.streams = (_Stream(self, 0), _Stream(self, 1))
        self.stdout, self.stderr = self.streams
        sys.stdout, sys.stderr = self.streams
        writers = self._writers
        if writers is not None:
            self._writers = None
            try:
                log_fd = os.dup(2)
                os.set_inheritable(log_fd, False)
                self.log_fd = log_fd
                set_log_fd(log_fd)
                os.dup2(writers[0], 1)
                os.dup2(writers[1], 2)
                if self._after_dup2 is not None:
                    self._after_dup2()
            except OSError as exc:
                log("fd 1/2 are not captured: %s" % exc)
                self.fds = self.probe = None
            for w in writers:
                os.close(w)

    def _prepare_fds(self):
        import codecs

        if sys.platform == "win32":
            from . import winfd

            ends, writers, self.poller = winfd.open_pipes()
            self.probe = self.poller.probe
            self._after_dup2 = winfd.follow_std_handles
        else:
            import select

            ends = []
            writers = []
            for _ in (1, 2):
                r, w = os.pipe()
                os.set_blocking(r, False)
                ends.append(r)
                writers.append(w)
            self.poller = select.poll()  # the fd thread's
            probe = select.poll()  # the main thread's (a poll object is not for two threads at once)
            for r in ends:
                self.poller.register(r, select.POLLIN)
                probe.register(r, select.POLLIN)
            self.probe = probe.poll
        self._writers = writers
        self.fds = tuple(ends)
        self.decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in ends]
        threading.Thread(target=self._fd_loop, name="live-fd", daemon=True).start()

    def to_log(self, text):
        self._to_log(text.encode("utf-8", "replace"))

    def arm(self):
        self.armed = True
        self.wake.set()

    def late(self, call):
        """Output appended to a call that has ended: it goes to the log."""
        with self.flush_lock:
            parts = call.pending
            n = len(parts)
            batch = parts[:n]
            del parts[:n]
        for _s, text in batch:
            self.to_log(text)

    def _to_log(self, data):
        try:
            os.write(self.log_fd, data)
        except OSError:
            pass

    def flush(self, call):
        """Pending output of `call` to events. Writers append to `call.pending` without a lock:
        take the first n items and delete exactly those (both atomic), so a concurrent append
        is never lost; `flush_lock` keeps the events in order."""
        with self.flush_lock:
            parts = call.pending
            n = len(parts)
            if not n:
                return
            batch = parts[:n]
            del parts[:n]
            call.pending_size = 0
            self.journal.add_output(call, batch)

    def _flush_loop(self):
        while True:
            self.wake.wait()
            time.sleep(FLUSH_DELAY)
            self.wake.clear()
            self.armed = False
            call = self.current
            if call is not None:
                try:
                    self.flush(call)
                except Exception as exc:
                    log("flushing output failed: %r" % exc)

    def _read_fds(self, call, ready):
        """Move what the fd pipes hold to `call` (or the log); caller holds `fd_lock`."""
        for fd, _ in ready:
            index = self.fds.index(fd)
            while True:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if not data:
                    break
                if call is None:
                    self._to_log(data)
                else:
                    text = self.decoders[index].decode(data)
                    if text:
                        self.write_to(call, index, text)
                if len(data) < 65536:
                    break

    def write_to(self, call, index, text):
        """Output read from fd 1/2 (the fd thread, or the main thread at a call's end)."""
        if call.closed:
            self.to_log(text)
            return
        call.pending.append((index, text))
        size = call.pending_size = call.pending_size + len(text)
        if size >= CHUNK:
            self.flush(call)
        elif not self.armed:
            self.arm()

    def _fd_loop(self):
        poll = self.poller.poll
        while True:
            try:
                ready = poll()
            except InterruptedError:
                continue
            with self.fd_lock:
                self._read_fds(self.current, ready)

    def drain(self, call):
        """(Main thread, at the end of `call`) Take what fd 1/2 still hold for it; also wait
        for a read of the fd thread in progress."""
        with self.fd_lock:
            ready = self.probe(0)
            if ready:
                self._read_fds(call, ready)
                for index, decoder in enumerate(self.decoders):
                    tail = decoder.decode(b"", True)
                    if tail:
                        self.write_to(call, index, tail)

    def restore(self):
        """As `exec` did before: a call's redirection of sys.stdout/sys.stderr ends with it."""
        if self.streams is not None:
            sys.stdout, sys.stderr = self.streams

    def end(self, call):
        """(Main thread) The call has returned: take what is left of its output, then close it.
        (`Dispatcher.run_call` inlines this for the common call.)"""
        if self.probe is not None and (self.probe(0) or self.fd_lock.locked()):
            self.drain(call)
        self.current = None
        call.closed = True  # from here on, writes (of other threads) go to the log
        # Also wait for a flush in progress (the flusher thread may hold output it took from
        # `pending` but has not made events yet): the end must come after all of them.
        if call.pending or self.flush_lock.locked():
            self.flush(call)
        if sys.stdout is not self.stdout or sys.stderr is not self.stderr:
            self.restore()


def _can_capture_fds():
    if sys.platform == "win32":
        try:
            from . import winfd
        except ImportError:
            return False
        return winfd.can_capture()
    try:
        import select

        return hasattr(select, "poll")
    except ImportError:
        return False
