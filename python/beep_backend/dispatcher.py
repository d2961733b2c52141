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

from .log import log  # pipe_server imports it from here too
from .operations import INTERRUPTED, CallTimeout, Operations, bad_request, error_body

_STOP = object()
LONG_CALL = 0.05  # seconds (at most) before the pipe transport's watcher takes over its sockets
_TICK = LONG_CALL / 2
_HAS_ITIMER = hasattr(signal, "setitimer")


class Dispatcher:
    def __init__(self, info):
        self.operations = Operations()
        self.info = info  # the static part of the `info` answer
        self.queue = SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0  # sequence number of the call running on the main thread, 0 when idle
        self._seq = 0
        self._interrupt_target = 0
        self._stopping = False
        self._main_ident = threading.main_thread().ident
        self.on_exit = []  # callables run (once) before the process exits
        self.wakers = []  # callables that wake a main loop other than the queue (pipe)

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
            reply(200, {"value": self.interrupt()})
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
        return op in self.operations.table or op in ("info", "interrupt", "shutdown")

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

    def interrupt(self):
        with self._lock:
            seq = self._running
            if not seq:
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
        signal.signal(signal.SIGINT, self._on_sigint)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, self._on_sigterm)
        if _HAS_ITIMER:
            signal.signal(signal.SIGALRM, self._on_alarm)

    def run_forever(self):
        """Run queued calls until `stop`, or until an external SIGINT while idle."""
        get = self.queue.get
        try:
            while True:
                item = get()
                if item is _STOP:
                    return
                fn, req, reply = item
                status, body = self._run(fn, req)
                try:
                    reply(status, body)
                except BaseException as exc:
                    log("failed to send an answer: %r" % exc)
        except KeyboardInterrupt:
            log("SIGINT while idle")

    def run_call(self, fn, req):
        """Run one operation on the main thread; `(status, body)`, never raises.

        If `on_long` is set (the pipe transport), it is called (on the main thread, from the
        SIGALRM handler) once the call has run for LONG_CALL / 2 to LONG_CALL seconds: the pipe
        transport then lets a watcher thread read its sockets, so `interrupt` can arrive while
        user code runs.
        """
        try:
            seq = self._seq + 1  # only the main thread writes it
            self._seq = seq
            try:
                if "timeout" in req and fn.__name__ == "op_exec":
                    self._arm_timeout(seq, req["timeout"])
                elif not self._timer_due and self.on_long is not None and _HAS_ITIMER:
                    # Start the tick that finds long calls (see `_on_alarm`). While calls keep
                    # coming it stays armed, so back-to-back short calls make no syscall here.
                    signal.setitimer(signal.ITIMER_REAL, _TICK)
                    self._timer_due = time.monotonic() + _TICK
                self._running = seq
                try:
                    return fn(req)
                finally:
                    self._running = 0
                    if self._timer_seq or self._fallback is not None:
                        self._disarm()
            except BaseException as exc:
                return error_body(exc)
        except BaseException as exc:
            # A signal that landed in our own bookkeeping (e.g. a second interrupt while the
            # call unwinds) may have cut a `finally` short: clean up again.
            self._running = 0
            self._disarm()
            return error_body(exc)

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

    _run = run_call
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


def bad_request_body(message):
    return bad_request(message).status, bad_request(message).body()
