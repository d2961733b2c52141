"""Live calls: call ids, per-call output capture, the journal, and readers that follow a call.

Everything that runs user code is a *call*. Most calls are plain: a server-assigned id, not
streamed, no output (`eval 1+1`). They are the hot path (`Dispatcher.run_call`) and cost
almost nothing new: no object is made for them while they run (`Capture.current` holds the
call's number) and a finished one is one tuple of atoms in the journal's ring. Such a call
becomes a `Call` only when something needs one: it writes output, a reader attaches to it,
`calls` lists it while it runs (`Capture.claim`). The others (a client's id, streamed, `exec`)
are `Call`s from the start (`Journal.begin`/`finish`). While a call runs:

- `sys.stdout`/`sys.stderr` are `TextIOWrapper`s (installed once, at the start of the main
  loop) writing straight through to `_Raw` ends that append to one `pending` list: stdout's
  bytes as they are (`list.append` itself, no Python frame, after the first write since the
  flusher last ran), stderr's and fd output as `(stream, data)`, so the order stays.
- fd 1 and fd 2 are the write ends of two pipes (dup2'd once, not per call); a reader thread
  moves what arrives to `pending`, or to the log (the server's real stderr, kept as another
  fd) when no call runs. At the end of a call the main thread reads what is left in the pipes
  itself, so output written during the call is never given to the next one: where a signal
  tells when the pipes got data (`Capture._hint_fds`, Linux), only after one came; else with a
  `poll(0)` at every end. On Windows fd 1/2 write to files instead, which the ends of calls
  read (`winfd.py`).
- A flusher thread turns pending output into events of the running call (or log lines when
  none runs) ~20 ms after the first write; the main thread does it for the rest at the end.
  While an `exec` runs, stdout buffers (a `print` is one C call, as with the old `StringIO`)
  and the flusher flushes it every ~10 ms; a write to stderr flushes it first (order kept).

The journal keeps the last calls in a ring (bounded in calls; a `Call` also keeps its events,
bounded in bytes, oldest dropped first) and their ends. Readers (`follow`) run on their own
threads and wait on one condition; the main thread only notifies it when someone waits.
"""

import io
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
CHUNK = 64 * 1024  # at most this many characters per output event
FLUSH_DELAY = 0.02  # seconds the flusher waits after the first pending byte
# Its period while an `exec` runs with stdout buffered (it then also waits for the GIL: up to
# the switch interval, 5 ms, twice, before a chunk reaches a reader).
BUFFERED_TICK = 0.01
MAX_ID = 128
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
STREAMS = ("stdout", "stderr")
# The ops that run user code (the others have no call id).
LIVE_OPS = frozenset(("exec", "eval", "import", "create", "call", "getattr", "setattr"))
# A request dict's key for a `Waiter` (not a string: no JSON request can carry it).
WAITER = object()
_EMPTY = ((0, "", None, None, 0.0), 0.0, 0, None)  # a ring slot that holds no call yet
_noop = ().__len__  # a C callable without arguments: `flush` of the raw ends


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


def server_number(cid):
    """n if `cid` is written like the server's id `c<n>`, else None."""
    if type(cid) is str and 1 < len(cid) <= 21 and cid[0] == "c" and cid[1:].isascii() and cid[1:].isdigit():
        n = int(cid[1:])
        if n and "c%d" % n == cid:
            return n
    return None


def session_name(session):
    return session if type(session) is str and session else "default"


def state(end, status):
    if end is None:
        return "running"
    error = end.get("error")
    if error is None:
        return "done"
    if error.get("type") == "KeyboardInterrupt":
        return "interrupted"
    return "timed_out" if status == 408 else "failed"


def _size(text):
    """`text`'s size in UTF-8 bytes (lone surrogates as 3 bytes each)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _decode(data):
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


class Call:
    """A call that is more than a plain one (see the module doc): its state and its journal.

    No `__slots__`: the fields most calls never change are class defaults, so opening a call
    sets few attributes.
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
    keep = None  # ([stdout texts], [stderr texts]) dropped from the journal of an unstreamed exec

    def __init__(self, cid, op, session, n, started=None):
        self.id = cid
        self.op = op
        self.session = session_name(session)
        self.n = n  # its place in the journal's ring
        self.started = time.time() if started is None else started

    @property
    def state(self):
        return state(self.end, self.status)

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


# A plain call: `(n, id, op, session as sent, started)` while it runs (in `Capture.live`), then
# `(that, ended, status, end body)` in the ring once it ended. (The pipe leaves `call` and `seq`
# out of an end body it did not need them in: `_record_call` adds them.)
def _record_row(rec):
    (_n, cid, op, session, started), ended, status, body = rec
    return {
        "call": cid,
        "op": op,
        "session": session_name(session),
        "state": state(body, status),
        "started": started,
        "duration": ended - started,
        "output_bytes": 0,
    }


def _record_call(rec):
    """A finished plain call as a `Call` (for a reader; not kept)."""
    (n, cid, op, session, started), ended, status, body = rec
    call = Call(cid, op, session, n, started)
    call.ended = ended
    call.status = status
    call.end = body if "seq" in body else dict(body, call=cid, seq=1)
    return call


def _numbers():
    """Batches of (n, `c<n>`) for the server's call ids. Formatting an id in the hot path of a
    real server costs ~0.6 us (a cold `str %`); here it is a `str` concatenation of a prefix
    and two digits, in a batch (a third of `"c%d" % n`). A `zip`, so that a caller that unpacks
    the pair at once makes no tuple per call (zip reuses its tuple when no one kept it)."""
    yield zip(range(1, 100), ["c%d" % k for k in range(1, 100)])
    m = 1
    while True:
        prefix = "c%d" % m  # ids 100 m .. 100 m + 99
        yield zip(range(100 * m, 100 * m + 100), [prefix + s for s in _TWO_DIGITS])
        m += 1


_TWO_DIGITS = ["%02d" % k for k in range(100)]


def _n(item):
    return item[0][0] if type(item) is tuple else item.n


def _session_of(item):
    return item[0][3] if type(item) is tuple else item.session


class Waiter:
    """A streamed request's link to its call, which exists only once the main thread runs it."""

    __slots__ = ("call", "refused")

    def __init__(self):
        self.call = None
        self.refused = None  # (status, body) when the request was refused before it became a call


class Journal:
    def __init__(self):
        self.max_bytes = _env_int("BEEP_BACKEND_JOURNAL_BYTES", DEFAULT_JOURNAL_BYTES)
        self.max_calls = _env_int("BEEP_BACKEND_JOURNAL_CALLS", DEFAULT_JOURNAL_CALLS)
        # The last calls: call n is in slot n % max_calls, as a record tuple (a finished plain
        # call) or its `Call`. Only the main thread writes it.
        self.ring = [_EMPTY] * self.max_calls
        # (n, `c<n>`) of the next call: its number and the server's id for it.
        self.numbers = itertools.chain.from_iterable(_numbers())
        self.named = {}  # a client's call id -> its Call, while in the ring
        self.hidden = {}  # session -> the last n given out when it was dropped (its calls are gone)
        self._taken_c = False  # a client named a call like the server's ids (`c12`)
        self.on_taken = None  # called once that happens (plain calls are no more)
        self.cond = threading.Condition(threading.Lock())
        self.waiters = 0  # readers waiting on `cond`
        self.capture = Capture(self)

    # ---- main thread -------------------------------------------------------------------

    def begin(self, req, op):
        """Open `req` as a `Call` and make it the one output goes to (raises OpError)."""
        named = self.named
        cid = req.get("call")
        if cid is None:
            n, cid = next(self.numbers)
            while self._taken_c and cid in named:  # a client took this id for one of its calls
                n, cid = next(self.numbers)
            call = Call(cid, req["op"], req.get("session"), n)
        else:
            check_call_id(cid)
            if self.lookup(cid) is not None:
                raise OpError(409, "CallExists", "call `%s` exists already" % cid)
            if server_number(cid) is not None and not self._taken_c:
                self._taken_c = True
                if self.on_taken is not None:
                    self.on_taken()
            call = Call(cid, req["op"], req.get("session"), next(self.numbers)[0])
            named[cid] = call
        waiter = req.get(WAITER)
        if waiter is not None:
            with self.cond:
                waiter.call = call
                self.cond.notify_all()
        elif op == "exec" and not req.get("stream"):
            call.keep = ([], [])  # all of its output goes in the answer, as before
        self.store(call.n, call)
        self.capture.begin(call, op == "exec")
        return call

    def store(self, n, item):
        """Put call n (a record or a Call) in the ring, in place of the call max_calls before it."""
        ring = self.ring
        i = n % self.max_calls
        old = ring[i]
        ring[i] = item
        if type(old) is not tuple and old is not item:
            self.evicted(old)

    def settle(self, n, rec):
        """Put plain call n's record in the ring: from here on no call runs (main thread; the
        pipe does this inline, after the call's answer is sent)."""
        ring = self.ring
        i = n % self.max_calls
        old = ring[i]
        ring[i] = rec
        self.capture.current = None  # (after: a reader that sees no call running finds it)
        if type(old) is not tuple:
            self.evicted(old)

    def evicted(self, call):
        """`call` left the ring."""
        if self.named.get(call.id) is call:
            self.named.pop(call.id, None)

    def has(self, n):
        """Whether call n is in the ring."""
        return _n(self.ring[n % self.max_calls]) == n

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
                events = call.events or ()
                for s, name in enumerate(STREAMS):
                    answer[name] = "".join(keep[s]) + "".join([e[2] for e in events if e[1] == s])
                call.keep = None
        call.end = body
        if self.waiters:
            with self.cond:
                self.cond.notify_all()
        return status, answer

    # ---- any thread --------------------------------------------------------------------

    def add_output(self, call, parts):
        """Append pending output (see `Capture.pending`) to `call` as events (caller holds the
        flush lock)."""
        try:
            runs = [(0, b"".join(parts))]  # only stdout (the common case)
        except TypeError:
            runs = _runs(parts)
        events = []
        for s, data in runs:
            if type(data) is bytes:
                n = len(data)
                data = _decode(data)
            else:
                n = -1
            if len(data) <= CHUNK:
                if data:
                    events.append((s, data, n if n >= 0 else _size(data)))
            else:
                for i in range(0, len(data), CHUNK):
                    piece = data[i : i + CHUNK]
                    events.append((s, piece, _size(piece)))
        if not events:
            return
        with self.cond:
            journal = call.events
            if journal is None:
                journal = call.events = deque()
            for s, data, n in events:
                seq = call.next_seq
                call.next_seq = seq + 1
                journal.append((seq, s, data, n))
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
        keep = call.keep
        while events and call.kept_bytes > self.max_bytes:
            seq, s, data, n = events.popleft()
            if keep is not None:  # an unstreamed exec still answers with all of it
                keep[s].append(data)
            call.kept_bytes -= n
            total += n
            cum.append(total)
            call.dropped_to = seq

    def lookup(self, cid):
        """The journal's call `cid` (a running plain call is made a `Call`), or None."""
        call = self.named.get(cid)
        if call is not None:
            if self.ring[call.n % self.max_calls] is not call or self._hidden(call.session, call.n):
                return None
            return call
        n = server_number(cid)
        if n is None:
            return None
        capture = self.capture
        running = capture.current
        if running == n if type(running) is int else running is not None and running.n == n:
            running = capture.claim()
            if running is not None and running.n == n:
                return running
        i = n % self.max_calls
        for _ in range(100):  # a plain call that just ended: its record comes right after
            item = self.ring[i]
            if _n(item) == n:
                break
            if type(capture.current) is not int:
                return None
            time.sleep(0)
        else:
            return None
        if type(item) is tuple:
            if self._hidden(item[0][3], n):
                return None
            return _record_call(item)
        if item.id != cid or self._hidden(item.session, n):
            return None
        return item

    def _hidden(self, session, n):
        cut = self.hidden.get(session_name(session))
        return cut is not None and n <= cut

    def find(self, cid):
        if type(cid) is not str:
            raise bad_request("`call` must be a string")
        call = self.lookup(cid)
        if call is None:
            raise OpError(404, "UnknownCall", "no call `%s` in the journal" % cid[:MAX_ID])
        return call

    def _items(self):
        """The journal's calls (records and Calls), oldest first, the running one included."""
        running = self.capture.claim()
        items = [item for item in list(self.ring) if item is not _EMPTY]
        if running is not None and running not in items:
            items.append(running)
        items.sort(key=_n)
        if items:  # a slot still holds the call before the running one: not in the window
            low = _n(items[-1]) - self.max_calls
            items = [item for item in items if _n(item) > low]
        if self.hidden:
            items = [item for item in items if not self._hidden(_session_of(item), _n(item))]
        return items

    def rows(self, session, every):
        rows = [_record_row(item) if type(item) is tuple else item.row() for item in self._items()]
        return [row for row in rows if every or row["session"] == session]

    def drop_session(self, name):
        """Forget the session's calls (its lease ran out; none of them runs)."""
        items = self._items()
        top = _n(items[-1]) if items else 0
        hidden = self.hidden
        for old in [s for s, cut in hidden.items() if cut <= top - self.max_calls]:
            hidden.pop(old, None)
        hidden[name] = top
        with self.cond:  # their output goes now
            for item in items:
                if type(item) is Call and item.session == name and item.end is not None:
                    item.events = None
                    item.kept_bytes = 0

    def running_id(self):
        """The id of the running call, or None."""
        running = self.capture.current
        if type(running) is int:
            return "c%d" % running
        return None if running is None else running.id

    def running_session(self):
        capture = self.capture
        running = capture.current
        if type(running) is int:
            try:
                return session_name(capture.live[0][3])
            except IndexError:  # it ended, or is a Call now
                running = capture.current
                if type(running) is int:
                    return None
        return None if running is None else running.session

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


def _runs(parts):
    """Pending parts as (stream, bytes or str), neighbours of the same stream joined."""
    runs = []
    stream = -1
    buf = []
    for part in parts:
        if type(part) is bytes:
            s, data = 0, part
        else:
            s, data = part
        if s != stream:
            if buf:
                runs.append((stream, _join(buf)))
            stream, buf = s, []
        buf.append(data)
    if buf:
        runs.append((stream, _join(buf)))
    return runs


def _join(buf):
    try:
        return b"".join(buf)
    except TypeError:
        return "".join([data if type(data) is str else _decode(data) for data in buf])


class _Raw:
    """The byte end of `sys.stdout`/`sys.stderr` (what their TextIOWrapper writes through to)."""

    closed = False

    def __init__(self, capture, index):
        self._capture = capture
        self._index = index
        self.name = "<%s>" % STREAMS[index]
        self.flush = _noop  # `print(..., flush=True)` costs no Python frame
        self.write = self.first_write if index == 0 else self.tagged_write

    def first_write(self, data):
        """stdout's first write since the flusher last ran: arm the flusher, and let the next
        writes go straight into `pending` (`list.append` itself) until it runs again."""
        capture = self._capture
        if capture.current is None:  # no call runs: the log's
            capture._to_log(data)
            return len(data)
        pending = capture.pending
        pending.append(data)
        if not capture.armed:
            capture.arm()
        self.write = pending.append
        return len(data)

    def tagged_write(self, data):
        capture = self._capture
        if capture.current is None:
            capture._to_log(data)
            return len(data)
        capture.unbuffer()
        capture.pending.append((self._index, data))
        if not capture.armed:
            capture.arm()
        return len(data)

    def close(self):
        pass  # `sys.stdout.close()` in user code must not end the capture

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False

    def isatty(self):
        return False

    def fileno(self):
        return self._index + 1  # fd 1/2: captured too (where the platform allows)


class _Bytes:
    """`sys.stdout.buffer`: bytes written there are decoded (UTF-8, replace) and captured."""

    def __init__(self, capture, index):
        self._capture = capture
        self._index = index

    def write(self, data):
        capture = self._capture
        if capture.current is None:
            capture._to_log(bytes(data))
            return len(data)
        capture.unbuffer()
        capture.pending.append((self._index, bytes(data).decode("utf-8", "replace")))
        if not capture.armed:
            capture.arm()
        return len(data)

    def flush(self):
        pass

    def fileno(self):
        return self._index + 1


class _Stream(io.TextIOWrapper):
    """`sys.stdout`/`sys.stderr` while the server runs: a C `TextIOWrapper` writing through (no
    buffer to flush at a call's end) to a `_Raw` end; `buffer` is a `_Bytes`."""

    def __init__(self, capture, index):
        self._raw = _Raw(capture, index)
        io.TextIOWrapper.__init__(
            self,
            self._raw,
            encoding="utf-8",
            errors="surrogatepass",  # any str goes through, and back (`_decode`)
            newline="\n",
            write_through=True,
        )
        self._bytes = _Bytes(capture, index)

    @property
    def buffer(self):
        return self._bytes


class Capture:
    def __init__(self, journal):
        self.journal = journal
        # The running call: None, the number of a plain call (see the module doc), or a Call.
        self.current = None
        # [(n, id, op, session, started)] while plain call n runs and is not a Call yet: whoever pops
        # it (the main thread at its end, or `claim`) decides what it is.
        # (A deque: a list that goes 0 -> 1 -> 0 items frees and mallocs its array every call.)
        self.live = deque()
        # Output not yet events (see `_Raw`): stdout bytes, or (stream, bytes or str). Writers
        # only append (atomic); `_take` removes exactly what it took.
        self.pending = []
        self.flush_lock = threading.Lock()  # pending -> events, in order
        self.claim_lock = threading.Lock()
        self.fd_lock = threading.Lock()  # reading the fd pipes
        self.armed = False
        self.wake = threading.Event()
        self.buffered = False  # stdout buffers (an `exec` runs, see `begin`)
        self.started = False
        self.prepared = False
        self._writers = None  # the pipes' write ends until `start` puts them on fd 1/2
        self._after_dup2 = None  # Windows: make the std handles follow fd 1/2
        self.fds = None  # (read end for fd 1, read end for fd 2) when fd 1/2 are captured
        self.fd_index = None  # {read end: 0 for fd 1, 1 for fd 2}
        self.read_fd = os.read
        self.probe = None  # poll(0) of those, for the main thread
        # Whether the end of a call must look at the fd pipes (`fd_check`): always, unless a
        # signal tells when they got data (`_hint_fds`).
        self.fd_dirty = True
        self.hinted = False
        self.log_fd = 2
        self.streams = None
        self.stdout = self.stderr = None  # the streams once started
        self.out_raw = None  # stdout's `_Raw`

    def prepare(self):
        """(Before the ready line) Make the fd pipes and start the threads, so the process has
        all of its threads by the time clients come."""
        if self.prepared:
            return
        self.prepared = True
        if _can_capture_fds():
            try:
                self._prepare_fds()
                self._epoll_probe()
                self._hint_fds()
            except OSError as exc:
                log("fd 1/2 are not captured: %s" % exc)
        threading.Thread(target=self._flush_loop, name="live-flush", daemon=True).start()

    def start(self):
        """(Main thread, after the ready line) Capture: the streams and the fd pipes."""
        if self.started:
            return
        self.prepare()
        self.started = True
        self.streams = (_Stream(self, 0), _Stream(self, 1))
        self.stdout, self.stderr = self.streams
        self.out_raw = self.stdout._raw
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
        if self.probe is None:
            self.fd_dirty = False  # nothing to look at

    def _epoll_probe(self):
        """Where there is epoll, the probe (one per call) is an `epoll_wait(0)`: about half the
        cost of `poll(0)` on two fds (no fd to look at unless one is ready)."""
        import select

        if self.fds is None or not hasattr(select, "epoll"):
            return
        ep = select.epoll()
        for r in self.fds:
            ep.register(r, select.EPOLLIN)
        self._epoll = ep
        self.probe = ep.poll

    def _hint_fds(self):
        """Where the OS can (Linux: `F_SETSIG`), the fd pipes' read ends send a signal (SIGURG:
        ignored by default, unused here) when data comes in: the end of a call looks at the
        pipes only after one came (`fd_dirty`), not with a syscall per call. The signal comes
        synchronously with the write (the writer is the main thread, running the call, in the
        common case) and its Python handler runs right after the C call that wrote. After one
        signal the pipes are quiet again (O_ASYNC off) until the end of the call looked at them,
        so a flood of writes is not a flood of signals. SA_RESTART: a system call of user code
        that the signal lands in is restarted, not failed with EINTR."""
        import signal

        try:
            import fcntl
        except ImportError:  # Windows
            return
        setsig = getattr(fcntl, "F_SETSIG", None)
        if self.fds is None or setsig is None or not hasattr(os, "O_ASYNC") or not hasattr(signal, "SIGURG"):
            return
        flags = []
        for r in self.fds:
            fcntl.fcntl(r, fcntl.F_SETOWN, os.getpid())
            fcntl.fcntl(r, setsig, signal.SIGURG)
            flags.append(fcntl.fcntl(r, fcntl.F_GETFL))
        self._fcntl = fcntl.fcntl
        self._setfl = fcntl.F_SETFL
        self._flags = [(r, f | os.O_ASYNC, f & ~os.O_ASYNC) for r, f in zip(self.fds, flags)]
        signal.signal(signal.SIGURG, self._on_hint)
        signal.siginterrupt(signal.SIGURG, False)
        self._set_async(True)
        self.hinted = True
        self.fd_dirty = False

    def _set_async(self, on):
        fcntl = self._fcntl
        for r, with_async, without in self._flags:
            fcntl(r, self._setfl, with_async if on else without)

    def _on_hint(self, signum, frame):
        """(Signal handler, main thread) The fd pipes got data."""
        if not self.fd_dirty:
            self.fd_dirty = True
            try:
                self._set_async(False)
            except OSError:
                pass

    def fd_check(self, call):
        """(Main thread, at the end of `call`: a Call or a plain call's number) Take what fd
        1/2 hold for it."""
        if self.hinted:
            if self._hint_lost():
                return self.drain(call)
            self.fd_dirty = False
            self._set_async(True)  # before looking: a write from here on signals again
        if self.probe is not None:
            self.drain(call)

    def _hint_lost(self):
        """User code took SIGURG for itself: look at the pipes at the end of every call."""
        import signal

        if signal.getsignal(signal.SIGURG) == self._on_hint:
            return False
        self.hinted = False
        self.fd_dirty = True
        return True

    def arm(self):
        self.wake.set()
        self.armed = True

    def _to_log(self, data):
        try:
            os.write(self.log_fd, data)
        except OSError:
            pass

    def begin(self, call, buffered=False):
        """(Main thread) `call` (a Call) runs from now on; `buffered` (an `exec`): stdout
        buffers what it is given (a `print` is then a C call without a Python frame or an
        object per write, as fast as the old `exec` into a `StringIO`), and the flusher
        flushes it every BUFFERED_TICK while the call runs, and the call's end for the rest."""
        if self.pending:  # written while no call ran: the log's
            self.flush(None)
        self.current = call
        if buffered and self.stdout is not None:
            try:
                self.stdout.reconfigure(write_through=False)
            except ValueError:  # user code detached it
                self._renew()
                return
            self.buffered = True
            self.arm()

    def _renew(self):
        """New streams, for ones user code broke (`sys.stdout.detach()`)."""
        self.streams = (_Stream(self, 0), _Stream(self, 1))
        self.stdout, self.stderr = self.streams
        self.out_raw = self.stdout._raw
        sys.stdout, sys.stderr = self.streams

    def unbuffer(self):
        """(Any thread) What stdout buffers to `pending`: the order of stdout and what follows
        (stderr, `sys.stdout.buffer`) is kept."""
        if self.buffered:
            try:
                self.stdout.flush()
            except ValueError:
                pass

    def claim(self):
        """(Any thread) The running call as a Call, None if none runs. A plain call is made a
        Call here, unless the main thread has already taken it back (it is ending)."""
        with self.claim_lock:
            try:
                n, cid, op, session, started = self.live.pop()
            except IndexError:
                running = self.current
                return None if type(running) is int else running
            call = Call(cid, op, session, n, started)
            self.current = call
            return call

    def _take(self, call):
        """Pending output to `call`'s events, or to the log (caller holds `flush_lock`)."""
        parts = self.pending
        if not parts:
            return
        raw = self.out_raw
        if raw is not None:  # the next write to stdout arms the flusher again (first: see below)
            raw.write = raw.first_write
        n = len(parts)  # what came before the line above; anything later armed the flusher
        batch = parts[:n]
        del parts[:n]
        if call is None:
            for part in batch:
                data = part if type(part) is bytes else part[1]
                self._to_log(data if type(data) is bytes else data.encode("utf-8", "replace"))
        else:
            self.journal.add_output(call, batch)

    def flush(self, call):
        with self.flush_lock:
            self._take(call)

    def _flush_loop(self):
        while True:
            self.wake.wait()
            time.sleep(BUFFERED_TICK if self.buffered else FLUSH_DELAY)
            self.wake.clear()
            self.armed = False
            try:
                if self.buffered:
                    self.arm()  # and again in BUFFERED_TICK while the call runs
                    self.unbuffer()
                with self.flush_lock:
                    if self.pending:
                        call = self.current
                        if type(call) is int:
                            call = self.claim()
                        self._take(call)
            except Exception as exc:
                log("flushing output failed: %r" % exc)

    def _prepare_fds(self):
        import codecs

        if sys.platform == "win32":
            from . import winfd

            ends, writers, self.poller = winfd.open_files()
            self.probe = self.poller.probe
            self.poller.running = lambda: self.current is not None
            self.poller.lock = self.fd_lock
            self.fd_index = self.poller.index  # changed by the poller when it rotates a file
            self.read_fd = winfd.read
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
            self.fd_index = {r: index for index, r in enumerate(ends)}
        self._writers = writers
        self.fds = tuple(ends)
        self.decoders = [codecs.getincrementaldecoder("utf-8")("replace") for _ in ends]
        threading.Thread(target=self._fd_loop, name="live-fd", daemon=True).start()

    def _read_fds(self, call, ready):
        """Move what the fd pipes hold to `call` (or the log); caller holds `fd_lock`."""
        read = self.read_fd
        for fd, _ in ready:
            index = self.fd_index[fd]
            while True:
                try:
                    data = read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # (what is left is read next time; say why it was not)
                    log("reading what fd %d got failed: %s" % (index + 1, exc))
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
        """Output read from fd 1/2 while `call` runs (the fd thread, or the main thread at a
        call's end): it is the running call's when it is made an event."""
        self.pending.append((index, text))
        if not self.armed:
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
        """(Main thread) `call` (a Call) has returned: what is pending is its output, then no
        call runs. (`Dispatcher.run_call` ends a plain call without this.)"""
        if self.buffered:
            self.buffered = False
            try:
                self.stdout.reconfigure(write_through=True)  # flushes it too
            except ValueError:
                self._renew()
        if self.fd_dirty or self.fd_lock.locked() or (self.hinted and self._hint_lost()):
            self.fd_check(call)
        with self.flush_lock:  # the flusher adds to the running call only, under this lock
            self._take(call)
            self.current = None
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
