"""Runs user code on the main thread; answers `info`/`interrupt`/`shutdown` from any thread.

User code runs on the main thread so that `interrupt` and per-call timeouts can use
signals: a signal stops a blocking `time.sleep` or a long loop on the main thread, while
an asynchronous exception set on a worker thread does not stop `time.sleep`.

- HTTP and gRPC: `submit(req, reply)` is called on an I/O thread. `info`, `interrupt` and
  `shutdown` are answered right there (they must work while a long call runs); everything
  else goes through a `SimpleQueue` to the main thread (`run_forever`), which calls
  `reply(status, body)` itself, so the answer leaves without another thread switch.
- Pipe: the main thread reads the sockets itself and calls `run_call` inline (see
  `pipe_server.py`).
- Per-call timeouts use `setitimer` (SIGALRM) on the main thread.
- `interrupt` sends SIGINT to the main thread, but only when a call is running, and the
  handler only raises in the call it was meant for (each call has a sequence number).
"""

import _thread
import os
import signal
import sys
import threading
import time
from _queue import SimpleQueue  # not `queue`: it imports heapq, collections, ...

from .live import LIVE_OPS, WAITER, Journal, Waiter
from .log import log  # pipe_server imports it from here too
from .operations import INTERRUPTED, CallTimeout, Operations, OpError, bad_request, error_body

_STOP = object()
LONG_CALL = 0.05  # seconds (at most) before the pipe transport's watcher takes over its sockets
_TICK = LONG_CALL / 2
_HAS_ITIMER = hasattr(signal, "setitimer")
_time = time.time


class Dispatcher:
    def __init__(self, info):
        self.operations = Operations()
        self.journal = journal = Journal()
        journal.on_taken = self._no_plain_calls
        # The ops a plain call can be (see `run_call`); emptied when plain calls are no more.
        self._plain_ops = set(LIVE_OPS - {"exec"})
        self._reaper = None
        self.info = info  # the static part of the `info` answer
        self.queue = SimpleQueue()
        self._lock = threading.Lock()
        # The call running on the main thread, 0 when idle: a plain call's number (> 0), or for
        # the others a sequence number (< 0).
        self._running = 0
        self._seq = 0
        self._interrupt_target = 0
        self._stopping = False
        self._main_ident = threading.main_thread().ident
        self.on_exit = []  # callables run (once) before the process exits
        self.wakers = []  # callables that wake a main loop other than the queue (pipe)
        self.run_call = self._make_run_call()

    # ---- I/O threads ---------------------------------------------------------------

    def submit(self, req, reply):
        op = req.get("op")
        if type(op) is not str:
            reply(*bad_request_body("missing or non-string field `op`"))
        elif op in self.operations.table:
            self.queue.put((self.operations.table[op], req, reply))
        elif op == "info":
            reply(200, {"value": self.info_value()})
        elif op == "interrupt":
            call = req.get("call")
            if call is not None and type(call) is not str:
                reply(*bad_request_body("`call` must be a string"))
            else:
                reply(200, {"value": self.interrupt(call)})
        elif op in QUICK:
            try:
                reply(*getattr(self, "op_" + op)(req))
            except OpError as exc:
                reply(exc.status, exc.body())
        elif op == "attach":
            # Blocks until the call ends: transports that must not block call `attach` on a
            # thread of their own (the pipe); HTTP and gRPC are on their connection's thread.
            reply(*self.attach(req, None))
        elif op == "shutdown":
            reply(200, {"value": True})
            self.stop("shutdown requested")
        else:
            reply(
                404,
                {
                    "error": {
                        "type": "UnknownOperation",
                        "message": "unknown op `%s`" % op[:100],
                        "traceback": "",
                    }
                },
            )

    def is_known(self, op):
        return op in self.operations.table or op in ("info", "interrupt", "shutdown", "attach") or op in QUICK

    # ---- live calls (any thread) ---------------------------------------------------------

    def op_calls(self, req):
        every = req.get("all")
        if every is not None and type(every) is not bool:
            raise bad_request("`all` must be a boolean")
        name = self._session_name(req)
        self._touch(name)
        return 200, {"value": self.journal.rows(name, bool(every))}

    def op_lease(self, req):
        seconds = req.get("seconds")
        if seconds is None:
            seconds = 0
        if type(seconds) not in (int, float) or not 0 <= seconds < 1e9:
            raise bad_request("`seconds` must be a number >= 0 (0: no lease)")
        ops = self.operations
        name = self._session_name(req)
        session = ops.sessions.get(name)
        if session is None:
            session = ops.session({"session": name})
        session.touched = time.monotonic()
        session.lease = float(seconds)
        if seconds:
            with self._lock:
                if self._reaper is None:
                    self._reaper = threading.Thread(target=self._reap_loop, name="lease-reaper", daemon=True)
                    self._reaper.start()
        return 200, {"value": True}

    @staticmethod
    def _session_name(req):
        name = req.get("session")
        if name is None or name == "":
            return "default"
        if type(name) is not str:
            raise bad_request("`session` must be a string")
        return name

    def _touch(self, name):
        session = self.operations.sessions.get(name)
        if session is not None and session.lease:
            session.touched = time.monotonic()

    def _reap_loop(self):
        """Drop the sessions whose lease ran out (handles released, namespace cleared)."""
        import gc

        while True:
            leases = [s.lease for s in list(self.operations.sessions.values()) if s.lease]
            time.sleep(min([1.0] + [lease / 4 for lease in leases]))
            now = time.monotonic()
            busy = self.journal.running_session()
            dropped = False
            for name, session in list(self.operations.sessions.items()):
                if session.lease and now - session.touched > session.lease and name != busy:
                    if self.operations.sessions.get(name) is session:
                        del self.operations.sessions[name]
                    session.drop()
                    self.journal.drop_session(name)
                    log("session `%s` dropped: its lease of %g s ran out" % (name[:100], session.lease))
                    dropped = True
            if dropped:
                gc.collect()

    def attach(self, req, emit, alive=None):
        """Replay and follow a call for `emit` (None: only wait); `(status, end body)`."""
        journal = self.journal
        try:
            call = journal.find(req.get("call"))
            after = req.get("after", 0)
            if after is None:
                after = 0
            if type(after) is not int or after < 0:
                raise bad_request("`after` must be an integer >= 0")
            self._touch(call.session)
        except OpError as exc:
            return exc.status, exc.body()
        end = journal.follow(call, after, emit or _ignore, alive)
        if end is None:
            return 499, {"error": {"type": "Gone", "message": "the reader went away", "traceback": ""}}
        return call.status, end

    def prepare_stream(self, req):
        """Mark a call request as streamed; returns what `follow` waits on. Queue it next."""
        waiter = Waiter()
        req[WAITER] = waiter
        req["stream"] = True  # also makes `Journal.begin` look at the request's options
        return waiter

    def follow(self, waiter, emit, alive=None):
        """(A reader's thread) Follow the call of a streamed request: `emit(event)` per event,
        then `(status, end)`. A request refused before it became a call (`BadRequest`,
        `CallExists`) gets its `(status, error)` and no events; 499 if `alive()` turned false."""
        journal = self.journal
        call = journal.wait_for_call(waiter, alive)
        if call is None:
            if waiter.refused is not None:
                return waiter.refused
            return 499, {"error": {"type": "Gone", "message": "the reader went away", "traceback": ""}}
        end = journal.follow(call, 0, emit, alive)
        if end is None:
            return 499, {"error": {"type": "Gone", "message": "the reader went away", "traceback": ""}}
        return call.status, end

    def info_value(self):
        value = dict(self.info)
        value["handles"] = self.operations.handle_count()
        # A call runs on the main thread now (`beep-host ps` shows the backend busy).
        value["busy"] = self._running != 0
        return value

    @property
    def stopping(self):
        return self._stopping

    @property
    def busy(self):
        return self._running != 0

    def interrupt(self, call=None):
        with self._lock:
            seq = self._running
            if not seq:
                return False
            if call is not None and self.journal.running_id() != call:
                return False
            self._interrupt_target = seq
            start_resender = not self._resending
            self._resending = True
        self._signal_main()
        if start_resender:
            threading.Thread(target=self._resend_interrupt, name="interrupt-resend", daemon=True).start()
        return True

    def _resend_interrupt(self):
        """Send SIGINT again until the handler has taken it.

        A signal can be lost for our purpose: if SIGINT arrives while the main thread runs
        another Python signal handler (our SIGALRM one) and then goes back into a blocking
        call such as `time.sleep`, CPython runs the SIGINT handler only when that call ends.
        """
        try:
            for _ in range(100):
                time.sleep(0.1)
                target = self._interrupt_target
                if not target or self._running != target:
                    return
                self._signal_main()
        finally:
            with self._lock:
                self._resending = False

    _resending = False
    _our_signal = False

    def _signal_main(self):
        self._our_signal = True
        if hasattr(signal, "pthread_kill"):
            signal.pthread_kill(self._main_ident, signal.SIGINT)
        else:  # Windows: no pthread_kill; this simulates SIGINT on the main thread
            _thread.interrupt_main()

    def stop(self, reason):
        """Stop the main loop (interrupting a running call); exit for sure after 2 s."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        log("stopping: %s" % reason)
        self.queue.put(_STOP)
        for wake in self.wakers:
            wake()
        self.interrupt()
        threading.Thread(target=self._exit_later, args=(2.0,), daemon=True).start()

    def _exit_later(self, delay):
        time.sleep(delay)
        log("main thread did not stop in time; exiting")
        self.exit(0)

    def exit(self, code):
        for fn in self.on_exit:
            try:
                fn()
            except Exception as exc:
                log("cleanup failed: %r" % exc)
        self.on_exit = []
        try:
            sys.__stderr__.flush()
        except Exception:
            pass
        os._exit(code)

    # ---- main thread ---------------------------------------------------------------

    def install_signal_handlers(self):
        """SIGINT (interrupt), SIGALRM (timeouts), SIGTERM (clean exit); call before ready."""
        self.journal.capture.prepare()
        signal.signal(signal.SIGINT, self._on_sigint)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, self._on_sigterm)
        if _HAS_ITIMER:
            signal.signal(signal.SIGALRM, self._on_alarm)

    def start_capture(self):
        """(Main thread, after the ready line) Capture calls' output from here on."""
        self.journal.capture.start()

    def run_forever(self):
        """Run queued calls until `stop`, or until an external SIGINT while idle."""
        self.start_capture()
        get = self.queue.get
        run_call = self.run_call
        try:
            while True:
                item = get()
                if item is _STOP:
                    return
                fn, req, reply = item
                status, body = run_call(fn, req)
                try:
                    reply(status, body)
                except BaseException as exc:
                    log("failed to send an answer: %r" % exc)
        except KeyboardInterrupt:
            log("SIGINT while idle")

    def _make_run_call(self):
        """`run_call(fn, req)`: run one operation on the main thread; `(status, body)`, never raises.

        An op that runs user code is a call (`live.py`): it gets a call id and a journal, and
        its output is captured while it runs. The common call (a server-assigned id, not
        streamed, not `exec`) is a plain call: it runs with its number as `capture.current`
        and ends as one record tuple in the journal's ring, unless it became a `Call`
        meanwhile (it wrote output, a reader claimed it). The others are `Call`s from the
        start (`Journal.begin`/`finish`).

        This is the hot path of every `eval`: in the real server every object and line it
        touches is a cache miss (it sleeps in `recv` between calls), so it does all of it in
        one Python frame (a frame more costs ~600 instructions), with the objects it needs
        bound once, here, as the function's defaults (no attribute lookups per call; constants
        are globals: each default or closure variable is copied into every call's frame). The
        pipe's only connection runs its plain calls inline, without this frame either
        (`PipeServer._serve_only`): keep the two plain branches alike.

        If `on_long` is set (the pipe transport), it is called (on the main thread, from the
        SIGALRM handler) once the call has run for LONG_CALL / 2 to LONG_CALL seconds: the pipe
        transport then lets a watcher thread read its sockets, so `interrupt` can arrive while
        user code runs.
        """
        journal = self.journal
        capture = journal.capture
        live = capture.live

        def run_call(
            fn,
            req,
            _plain=self._plain_ops,
            _next=journal.numbers.__next__,
            _capture=capture,
            _append=live.append,
            _pop=live.pop,
            _pending=capture.pending,
        ):
            op = req["op"]
            if op in _plain and "call" not in req and WAITER not in req:
                # A plain call. Its number is `_running` too (the others count down from -1).
                n, cid = _next()
                begun = (n, cid, op, req.get("session"), _time())
                _capture.current = n
                _append(begun)  # from here on `Capture.claim` may make it a Call
                try:
                    try:
                        if not self._timer_due and self.on_long is not None and _HAS_ITIMER:
                            self._start_tick()
                        self._running = n
                        try:
                            status, body = fn(req)
                        finally:
                            self._running = 0
                    except BaseException as exc:
                        status, body = error_body(exc)
                except BaseException as exc:  # a signal that landed in our own bookkeeping
                    status, body = self.failed(exc)
                try:
                    if _capture.fd_dirty:  # (a read of the fd thread in progress set it too)
                        _capture.fd_check(n)
                    if _pending:
                        return self._end_claimed(n, status, body, begun)
                    _pop()  # IndexError: claimed, a Call now
                    # (Not `exec`: as before, a redirection of sys.stdout by `eval`/`call` code stays.)
                    body["call"] = cid
                    body["seq"] = 1
                    journal.settle(n, (begun, _time(), status, body))
                except BaseException as exc:  # claimed, or an interrupt landing here
                    if type(exc) is not IndexError:
                        log("finishing call c%d: %r" % (n, exc))
                    return self._end_claimed(n, status, body, begun)
                return status, body
            call = None
            if op in LIVE_OPS:
                try:
                    call = self.journal.begin(req, op)
                except BaseException as exc:
                    status, body = error_body(exc)
                    waiter = req.get(WAITER)
                    if waiter is not None:
                        self.journal.refuse(waiter, status, body)
                    return status, body
            try:
                seq = self._seq - 1  # only the main thread writes it
                self._seq = seq
                try:
                    if "timeout" in req and fn.__name__ == "op_exec":
                        self._arm_timeout(seq, req["timeout"])
                    elif not self._timer_due and self.on_long is not None and _HAS_ITIMER:
                        self._start_tick()
                    self._running = seq
                    try:
                        status, body = fn(req)
                    finally:
                        self._running = 0
                        if self._timer_seq or self._fallback is not None:
                            self._disarm()
                except BaseException as exc:
                    status, body = error_body(exc)
            except BaseException as exc:
                # A signal that landed in our own bookkeeping (e.g. a second interrupt while the
                # call unwinds) may have cut a `finally` short: clean up again.
                self._running = 0
                self._disarm()
                status, body = error_body(exc)
            if call is not None:
                try:
                    return self.journal.finish(call, status, body)
                except BaseException as exc:  # an interrupt landing here: end the call all the same
                    log("finishing call %s: %r" % (call.id, exc))
                    return self.journal.finish(call, status, body)
            return status, body

        return run_call

    def failed(self, exc):
        """`(status, body)` of a call whose bookkeeping a signal cut short (see `run_call`)."""
        self._running = 0
        self._disarm()
        return error_body(exc)

    @property
    def can_tick(self):
        """Whether calls start the tick that finds long ones (`_start_tick`)."""
        return self.on_long is not None and _HAS_ITIMER

    def _start_tick(self):
        """Start the tick that finds long calls (see `_on_alarm`). While calls keep coming it
        stays armed, so back-to-back short calls make no syscall for it."""
        signal.setitimer(signal.ITIMER_REAL, _TICK)
        self._timer_due = time.monotonic() + _TICK

    def _no_plain_calls(self):
        """A client named a call like the server's ids: from now on every call checks its id."""
        self._plain_ops.clear()  # (the set `run_call` holds)

    def _end_claimed(self, n, status, body, begun):
        """End plain call n as a `Call` (it has output, or a reader claimed it)."""
        journal = self.journal
        capture = journal.capture
        call = capture.claim()
        if call is None or call.n != n:  # `run_call` took it back before an interrupt came
            body["call"] = begun[1]
            body["seq"] = 1
            if not journal.has(n):
                journal.store(n, (begun, _time(), status, body))
            capture.current = None
            return status, body
        journal.store(n, call)
        body.pop("call", None)
        try:
            return journal.finish(call, status, body)
        except BaseException as exc:
            log("finishing call %s: %r" % (call.id, exc))
            return journal.finish(call, status, body)

    def _arm_timeout(self, seq, timeout):
        """Arm the `exec` timeout of call `seq` (`timeout` as sent; checked here)."""
        if type(timeout) not in (int, float) or not timeout > 0:
            raise bad_request("`timeout` must be a positive number of seconds")
        if not _HAS_ITIMER:
            self._fallback = self._fallback_timer(seq, timeout)
            return
        now = time.monotonic()
        self._timeout_at = now + timeout
        self._timeout_len = timeout
        self._timer_seq = seq
        due = self._timeout_at
        if self.on_long is not None and now + _TICK < due:
            due = now + _TICK
        # A pending timer that fires earlier is fine: the handler re-arms for what is left.
        if not (now - 1.0 < self._timer_due <= due):
            signal.setitimer(signal.ITIMER_REAL, max(due - now, 1e-6))
            self._timer_due = due

    def _disarm(self):
        if self._timer_seq:
            self._timer_seq = 0
            self._timeout_at = 0.0
            self._timer_due = 0.0
            signal.setitimer(signal.ITIMER_REAL, 0)
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None

    on_long = None  # set by the pipe transport, see `run_call`
    _timer_seq = 0  # the call an exec timeout is armed for
    _timer_due = 0.0  # when the pending ITIMER_REAL fires (monotonic), 0 if none
    _long_seen = 0  # the call that was running at the last tick
    _long_done = 0  # the call `on_long` was called for
    _fallback = None
    _timeout_at = 0.0
    _timeout_len = None
    _timeout_fired = 0

    def _fallback_timer(self, seq, timeout):
        # No setitimer (Windows): a timer thread fakes SIGINT; the handler sees `_timeout_fired`.
        self._timeout_len = timeout

        def fire():
            if self._running == seq:
                self._timeout_fired = seq
                _thread.interrupt_main()

        t = threading.Timer(timeout, fire)
        t.daemon = True
        t.start()
        return t

    # Signal handlers run on the main thread between bytecodes.

    def _on_alarm(self, signum, frame):
        """The tick (every LONG_CALL / 2 while calls run) and `exec` timeouts.

        A call is long when it was already running at the previous tick: it then has run at
        least LONG_CALL / 2 and, as the tick runs from the call's start at the latest, at most
        LONG_CALL. Calls themselves do not read the clock. When a tick finds no call running,
        it is not re-armed; the next call arms it again.
        """
        self._timer_due = 0.0
        running = self._running
        if not running:
            return
        now = time.monotonic()
        on_long = self.on_long
        if on_long is not None and self._long_done != running:
            if self._long_seen == running:
                self._long_done = running
                on_long()
            else:
                self._long_seen = running
        if self._timer_seq == running and now >= self._timeout_at - 0.001:
            self._timer_seq = 0
            self._timeout_at = 0.0
            raise CallTimeout("exec timed out after %g s" % self._timeout_len)
        due = now + _TICK if on_long is not None and self._long_done != running else 0.0
        if self._timer_seq == running and (not due or self._timeout_at < due):
            due = self._timeout_at
        if due:
            signal.setitimer(signal.ITIMER_REAL, max(due - now, 1e-6))
            self._timer_due = due

    def _on_sigint(self, signum, frame):
        running = self._running
        if self._timeout_fired and self._timeout_fired == running:
            self._timeout_fired = 0
            raise CallTimeout("exec timed out after %g s" % self._timeout_len)
        ours, self._our_signal = self._our_signal, False
        target = self._interrupt_target
        if target:
            self._interrupt_target = 0
            if running == target:
                raise KeyboardInterrupt(INTERRUPTED)
        if target or ours:
            # Meant for a call that has ended, or a resend after the interrupt was taken.
            # Returning sends the main thread back into a blocking call; a SIGALRM that came
            # while we ran here would be lost until that call ends, so check the timeout now.
            if running and self._timer_seq == running and time.monotonic() >= self._timeout_at - 0.001:
                self._timer_seq = 0
                raise CallTimeout("exec timed out after %g s" % self._timeout_len)
            return
        # A SIGINT from outside (Ctrl-C): interrupt the call, or stop when idle.
        raise KeyboardInterrupt(INTERRUPTED)

    def _on_sigterm(self, signum, frame):
        log("SIGTERM")
        self.exit(0)


QUICK = frozenset(("calls", "lease"))  # answered on the I/O thread, like `info`


def _ignore(event):
    pass


def bad_request_body(message):
    return bad_request(message).status, bad_request(message).body()
