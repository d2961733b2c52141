"""Hands requests from the I/O threads to the main thread, which runs user code.

User code runs on the main thread so that `interrupt` and per-call timeouts can use
signals: a signal stops a blocking `time.sleep` or a long loop on the main thread, while
an asynchronous exception set on a worker thread does not stop `time.sleep`.

- `submit(req, reply)` is called on an I/O thread. `info`, `interrupt` and `shutdown` are
  answered right there (they must work while a long call runs); everything else goes
  through a `SimpleQueue` to the main thread, which calls `reply(status, body)` itself,
  so the answer leaves without another thread switch.
- `interrupt` sends SIGINT to the main thread, but only when a call is running, and the
  handler only raises in the call it was meant for (each call has a sequence number).
"""

import _thread
import os
import signal
import sys
import threading
import time
from queue import SimpleQueue

from .operations import CallTimeout, Operations, bad_request, error_body

_STOP = object()
_HAS_ITIMER = hasattr(signal, "setitimer")


def log(message):
    try:
        sys.__stderr__.write("beep_backend: %s\n" % message)
        sys.__stderr__.flush()
    except Exception:
        pass


class Dispatcher:
    def __init__(self, info):
        self.operations = Operations()
        self.info = info  # the static part of the `info` answer
        self.queue = SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0  # sequence number of the call running on the main thread, 0 when idle
        self._seq = 0
        self._interrupt_target = 0
        self._timeout_target = 0
        self._stopping = False
        self._main_ident = threading.main_thread().ident
        self.on_exit = []  # callables run (once) before the process exits

    # ---- I/O threads ---------------------------------------------------------------

    def submit(self, req, reply):
        op = req.get("op")
        if op in self.operations.table:
            self.queue.put((self.operations.table[op], req, reply))
        elif op == "info":
            reply(200, {"value": self.info_value()})
        elif op == "interrupt":
            reply(200, {"value": self.interrupt()})
        elif op == "shutdown":
            reply(200, {"value": True})
            self.stop("shutdown requested")
        elif type(op) is str:
            reply(404, {"error": {"type": "UnknownOperation", "message": "unknown op `%s`" % op[:100], "traceback": ""}})
        else:
            reply(*bad_request_body("missing or non-string field `op`"))

    def is_known(self, op):
        return op in self.operations.table or op in ("info", "interrupt", "shutdown")

    def info_value(self):
        value = dict(self.info)
        value["handles"] = self.operations.handle_count()
        return value

    @property
    def busy(self):
        return self._running != 0

    def interrupt(self, reason=None):
        with self._lock:
            seq = self._running
            if not seq:
                return False
            self._interrupt_target = seq
        self._signal_main()
        return True

    def _signal_main(self):
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

    def run_forever(self):
        """Run queued calls until `stop`; returns normally, or on an external SIGINT/SIGTERM."""
        signal.signal(signal.SIGINT, self._on_sigint)
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, self._on_sigterm)
        if _HAS_ITIMER:
            signal.signal(signal.SIGALRM, self._on_alarm)
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

    def _run(self, fn, req):
        with self._lock:
            self._seq += 1
            seq = self._seq
        timeout = req.get("timeout") if fn.__name__ == "op_exec" else None
        timer = None
        try:
            if timeout is not None:
                if type(timeout) not in (int, float) or not timeout > 0:
                    raise bad_request("`timeout` must be a positive number of seconds")
                timer = self._start_timer(seq, timeout)
            self._running = seq
            try:
                return fn(req)
            finally:
                self._running = 0
                if timer is not None:
                    self._cancel_timer(timer)
        except BaseException as exc:
            return error_body(exc)

    def _start_timer(self, seq, timeout):
        self._timeout_target = seq
        if _HAS_ITIMER:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            return True
        # Windows: a timer thread fakes SIGINT; the handler sees `_timeout_fired`.
        t = threading.Timer(timeout, self._timeout_fallback, args=(seq,))
        t.daemon = True
        t.start()
        return t

    def _timeout_fallback(self, seq):
        if self._running == seq:
            self._timeout_fired = seq
            _thread.interrupt_main()

    def _cancel_timer(self, timer):
        self._timeout_target = 0
        if timer is True:
            signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            timer.cancel()

    # Signal handlers run on the main thread between bytecodes.

    def _on_alarm(self, signum, frame):
        if self._running and self._running == self._timeout_target:
            self._timeout_target = 0
            raise CallTimeout("exec timed out")

    def _on_sigint(self, signum, frame):
        running = self._running
        if getattr(self, "_timeout_fired", 0) and self._timeout_fired == running:
            self._timeout_fired = 0
            raise CallTimeout("exec timed out")
        target = self._interrupt_target
        if target:
            self._interrupt_target = 0
            if running == target:
                raise KeyboardInterrupt
            return  # meant for a call that has finished already
        # A SIGINT from outside (Ctrl-C): interrupt the call, or stop when idle.
        raise KeyboardInterrupt

    def _on_sigterm(self, signum, frame):
        log("SIGTERM")
        self.exit(0)


def bad_request_body(message):
    return bad_request(message).status, bad_request(message).body()
