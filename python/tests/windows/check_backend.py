"""Checks of the Python backend on Windows, run by `scripts/test-windows.sh` under Wine.

Plain asserts (pytest is not in the Windows CPython the lane uses): `python check_backend.py
[NAME ...]` runs every check (or the named ones) against real backend processes started with
this interpreter, and prints one line per check with its time. Exit status 1 on a failure.
"""

import _winapi
import http.client
import json
import msvcrt
import os
import struct
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(os.path.dirname(HERE))  # python/, holding beep_backend
TOKEN = "windows-check-token"
ERROR_PIPE_BUSY = 231
GENERIC_READ_WRITE = 0x80000000 | 0x40000000


class Backend:
    """A `python -m beep_backend` process; `ready` is its first stdout line, parsed."""

    def __init__(self, transport, *args, token=TOKEN, env=None):
        environ = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
        environ.pop("BEEP_PARENT_PID", None)
        if token is not None:
            environ["BEEP_BACKEND_TOKEN"] = token
        environ.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "beep_backend", "--transport", transport, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
        )
        self.stderr = []
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline()
        assert line, "no ready line; stderr: %s" % self.log()
        self.ready = json.loads(line)
        self.address = self.ready.get("address")

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace"))

    def log(self):
        return "".join(self.stderr)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class PipeClient:
    """A client of the named pipe: `open()` of `\\\\.\\pipe\\...` is CreateFile."""

    def __init__(self, name, token=TOKEN):
        deadline = time.monotonic() + 10
        while True:
            try:
                handle = _winapi.CreateFile(name, GENERIC_READ_WRITE, 0, 0, _winapi.OPEN_EXISTING, 0, 0)
                break
            except OSError as exc:
                if exc.winerror != ERROR_PIPE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)  # all instances taken: the server makes the next one
        self.f = os.fdopen(msvcrt.open_osfhandle(handle, 0), "r+b", buffering=0)
        self.buf = b""
        self.next_id = 1
        if token is not None:
            answer = self.call("auth", token=token)
            assert answer.get("value") is True, answer

    def send_raw(self, data):
        self.f.write(data)

    def send(self, obj):
        data = json.dumps(obj).encode()
        self.send_raw(struct.pack(">I", len(data)) + data)

    def recv(self):
        """The next answer, or None at the end of the stream."""
        while True:
            if len(self.buf) >= 4:
                size = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + size:
                    body, self.buf = self.buf[4 : 4 + size], self.buf[4 + size :]
                    return json.loads(body)
            chunk = self.f.read(65536)
            if not chunk:
                return None
            self.buf += chunk

    def call(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        self.send(dict(fields, id=rid, op=op))
        answer = self.recv()
        assert answer is not None, "connection closed before the answer to %s" % op
        assert answer.get("id") == rid, (rid, answer)
        return answer

    def close(self):
        self.f.close()


def pipe_backend(*args, **kw):
    backend = Backend("pipe", *args, **kw)
    assert backend.ready["event"] == "ready", backend.ready
    assert backend.address.startswith("\\\\.\\pipe\\beep-backend-"), backend.address
    assert len(backend.address.rsplit("-", 1)[1]) == 32, backend.address  # 128 bits in hex
    return backend


# ---- checks ----------------------------------------------------------------------------


def check_every_op():
    backend = pipe_backend()
    try:
        c = PipeClient(backend.address)
        out = c.call("exec", code="x = 40\nprint('hi')\nx + 2")
        assert (out["stdout"], out["value"]) == ("hi\n", 42), out
        assert c.call("eval", expr="1+1")["value"] == 2
        assert c.call("import", module="os.path")["value"]["$handle"]
        od = c.call("create", target="collections.OrderedDict", args=[[["a", 1]]], kwargs={})["value"]
        assert od["type"] == "collections.OrderedDict", od
        assert c.call("call", handle=od, method="get", args=["a"], kwargs={})["value"] == 1
        ns = c.call("create", target="types.SimpleNamespace", args=[], kwargs={"y": 3})["value"]
        assert c.call("getattr", handle=ns, name="y")["value"] == 3
        assert c.call("setattr", handle=ns, name="y", value=5)["value"] is None
        assert c.call("getattr", handle=ns, name="y")["value"] == 5
        assert len(c.call("handles")["value"]) == 3
        assert c.call("release", handle=ns)["value"] is True
        assert c.call("eval", expr="x", session="other")["error"]["type"] == "NameError"
        info = c.call("info")["value"]
        assert info["transport"] == "pipe" and info["pid"] == backend.proc.pid, info
        assert c.call("interrupt")["value"] is False
        assert c.call("exec", code="1/0")["error"]["type"] == "ZeroDivisionError"
        timed = c.call("exec", code="while True: pass", timeout=0.3)
        assert timed["error"]["type"] == "TimeoutError", timed
        assert c.call("shutdown")["value"] is True
        assert backend.proc.wait(10) == 0
    finally:
        backend.stop()


def check_wrong_token():
    backend = pipe_backend()
    try:
        for token in ("wrong", ""):
            c = PipeClient(backend.address, token=None)
            c.send({"id": 0, "op": "auth", "token": token})
            answer = c.recv()
            assert answer["error"]["type"] == "Unauthorized", answer
            assert c.recv() is None, "the connection stays open after a wrong token"
        c = PipeClient(backend.address, token=None)
        c.send({"id": 1, "op": "eval", "expr": "1+1"})  # no auth frame first
        assert c.recv()["error"]["type"] == "Unauthorized"
        assert c.recv() is None
        assert PipeClient(backend.address).call("eval", expr="2+2")["value"] == 4
    finally:
        backend.stop()


def check_bad_frames():
    backend = pipe_backend("--max-body", "2048")
    try:
        c = PipeClient(backend.address)
        for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
            c.send_raw(struct.pack(">I", len(body)) + body)
            answer = c.recv()
            assert answer["id"] is None and answer["error"]["type"] == "BadRequest", answer
        assert c.call("nonsense")["error"]["type"] == "UnknownOperation"
        assert c.call("eval", expr="3")["value"] == 3  # still usable
        c.send_raw(struct.pack(">I", 4096) + b"x" * 16)
        answer = c.recv()
        assert answer["error"]["type"] == "FrameTooLarge", answer
        assert c.recv() is None
        big = PipeClient(backend.address, token=None)
        big.send_raw(struct.pack(">I", 70000))
        assert big.recv()["error"]["type"] == "Unauthorized"
    finally:
        backend.stop()


def check_auth_deadline():
    backend = pipe_backend(env={"BEEP_BACKEND_AUTH_TIMEOUT": "0.5"})
    try:
        c = PipeClient(backend.address, token=None)
        started = time.monotonic()
        answer = c.recv()
        assert answer["error"]["message"] == "no auth frame within 0.5 s", answer
        assert c.recv() is None
        assert time.monotonic() - started < 3
    finally:
        backend.stop()


def check_pipelining():
    backend = pipe_backend()
    try:
        c = PipeClient(backend.address)
        for i in range(200):
            c.send({"id": i, "op": "eval", "expr": "%d * 2" % i})
        for i in range(200):
            answer = c.recv()
            # Every answer of a call carries its call id and end seq (live calls).
            assert answer.pop("call", "").startswith("c"), answer
            assert answer.pop("seq", None) == 1, answer
            assert answer == {"id": i, "value": i * 2}, answer
    finally:
        backend.stop()


def check_interrupt_busy_loop():
    """The loop stops within 1 s of the `interrupt` being sent (timed where it stops: the
    answer's way back through Wine's server is not part of it)."""
    backend = pipe_backend()
    try:
        busy = PipeClient(backend.address)
        control = PipeClient(backend.address)
        result = {}
        busy.call("exec", code="import time")
        code = "try:\n    while True: pass\nexcept KeyboardInterrupt:\n"
        code += "    stopped_at = time.time()\n    raise"

        def run():
            result["answer"] = busy.call("exec", code=code)

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.5)  # into the loop (an interrupt before its `try` would not be timed)
        deadline = time.monotonic() + 10
        while True:
            sent_at = time.time()
            if control.call("interrupt")["value"]:
                break
            assert time.monotonic() < deadline, "the busy call never started"
            time.sleep(0.02)
        thread.join(10)
        assert not thread.is_alive(), "the busy loop was not interrupted"
        assert result["answer"]["error"]["type"] == "KeyboardInterrupt", result
        stopped = busy.call("eval", expr="stopped_at")
        assert "value" in stopped, stopped
        took = stopped["value"] - sent_at
        assert took < 1.0, "interrupt took %.3f s" % took
        assert busy.call("eval", expr="1+1")["value"] == 2
    finally:
        backend.stop()


def check_four_clients():
    backend = pipe_backend()
    try:
        errors = []

        def client(k):
            try:
                c = PipeClient(backend.address)
                for i in range(500):
                    answer = c.call("eval", expr="%d * 1000 + %d" % (k, i))
                    assert answer["value"] == k * 1000 + i, (k, i, answer)
                c.close()
            except BaseException:
                errors.append(traceback.format_exc())

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[0]
        assert not any(t.is_alive() for t in threads)
    finally:
        backend.stop()


def check_interrupt_on_the_only_connection():
    """An `interrupt` sent on the connection whose call runs (the main thread reads the only
    connection itself; once a call runs long, the connection gets a reader thread): the loop
    stops within 1 s, also after an idle second (the watcher then sleeps until a call comes)."""
    backend = pipe_backend()
    try:
        c = PipeClient(backend.address)
        c.call("exec", code="import time")
        time.sleep(1.5)
        code = "try:\n    while True: pass\nexcept KeyboardInterrupt:\n"
        code += "    stopped_at = time.time()\n    raise"
        c.send({"id": 100, "op": "exec", "code": code})
        time.sleep(0.5)
        sent_at = time.time()
        c.send({"id": 101, "op": "interrupt"})
        answers = {}
        stuck = threading.Timer(10, backend.stop)  # never read: end it, so the check fails
        stuck.start()
        for _ in range(2):
            answer = c.recv()
            assert answer is not None, "the interrupt was not read while the call ran"
            answers[answer["id"]] = answer
        stuck.cancel()
        assert answers[101]["value"] is True, answers
        assert answers[100]["error"]["type"] == "KeyboardInterrupt", answers
        took = c.call("eval", expr="stopped_at")["value"] - sent_at
        assert took < 1.0, "interrupt took %.3f s" % took
        assert c.call("eval", expr="1+1")["value"] == 2
    finally:
        backend.stop()


def check_who_reads_the_connections():
    """The only connection is read by the main thread (no reader thread); a second client gives
    both a reader thread; when it leaves, the main thread takes the first back. Answers stay in
    order through every change, and a client leaving while its call runs harms nobody."""
    backend = pipe_backend()
    expr = "sorted(t.name for t in __import__('threading').enumerate())"

    def readers(client):
        return client.call("eval", expr=expr)["value"].count("pipe-conn")

    def until(client, count):
        deadline = time.monotonic() + 5
        while readers(client) != count:
            assert time.monotonic() < deadline, "still not %d reader threads: %s" % (count, backend.log())
            time.sleep(0.02)

    try:
        a = PipeClient(backend.address)
        assert readers(a) == 0
        b = PipeClient(backend.address)
        until(a, 2)
        for client, k in ((a, 1), (b, 2)):
            for i in range(50):
                client.send({"id": 1000 + i, "op": "eval", "expr": "%d * 100 + %d" % (k, i)})
        for client, k in ((b, 2), (a, 1)):
            for i in range(50):
                answer = client.recv()
                assert (answer["id"], answer["value"]) == (1000 + i, k * 100 + i), answer
        b.close()
        until(a, 0)
        # A long call gives the only connection a reader thread while it runs; then it is back.
        a.call("exec", code="import time; time.sleep(0.3)")
        until(a, 0)
        for i in range(50):  # pipelined on the only connection
            a.send({"id": 2000 + i, "op": "eval", "expr": "%d" % i})
        for i in range(50):
            answer = a.recv()
            assert (answer["id"], answer["value"]) == (2000 + i, i), answer
        a.send({"id": 3000, "op": "exec", "code": "time.sleep(0.5)"})
        a.close()  # gone while its call runs
        c = PipeClient(backend.address)
        assert c.call("eval", expr="1+1")["value"] == 2
        until(c, 0)  # (c may have come while a was still open: then it is taken back)
    finally:
        backend.stop()


def check_clients_come_and_go():
    """One client calls without pause (with now and then a call long enough to get its
    connection a reader thread) while others connect, call and leave, again and again: who
    reads the first connection changes each time, and no call is lost or stuck."""
    backend = pipe_backend()
    stuck = threading.Timer(60, backend.stop)  # a stuck call: end it, so the check fails
    stuck.start()
    try:
        errors = []
        done = threading.Event()

        def steady():
            try:
                c = PipeClient(backend.address)
                i = 0
                while not done.is_set():
                    if i % 100 == 50:
                        assert c.call("exec", code="import time; time.sleep(0.06)").get("error") is None
                    answer = c.call("eval", expr="%d + 1" % i)
                    assert answer.get("value") == i + 1, (i, answer)
                    i += 1
                assert i > 100, "only %d calls" % i
            except BaseException:
                errors.append(traceback.format_exc())

        thread = threading.Thread(target=steady)
        thread.start()
        for k in range(30):
            other = PipeClient(backend.address)
            assert other.call("eval", expr="%d * 2" % k)["value"] == k * 2
            other.close()
            time.sleep(0.01 * (k % 4))
        done.set()
        thread.join(30)
        assert not thread.is_alive(), "the steady client is stuck"
        assert not errors, errors[0]
    finally:
        stuck.cancel()
        backend.stop()


def check_name_taken():
    # A name held by another backend.
    first = pipe_backend()
    try:
        second = Backend("pipe", "--socket", first.address)
        assert second.ready["event"] == "error" and second.ready["kind"] == "bind_failed", second.ready
        assert "already exists" in second.ready["message"], second.ready
        assert second.proc.wait(10) == 1
        assert PipeClient(first.address).call("eval", expr="1")["value"] == 1  # untouched
    finally:
        first.stop()
    # A name held by any other process (this one).
    name = "\\\\.\\pipe\\beep-backend-" + os.urandom(16).hex()
    handle = _winapi.CreateNamedPipe(name, 0x3 | 0x40000000, 0, 1, 4096, 4096, 0, 0)
    try:
        other = Backend("pipe", "--socket", name)
        assert other.ready["event"] == "error" and "already exists" in other.ready["message"], other.ready
        other.stop()
    finally:
        _winapi.CloseHandle(handle)


def check_owner_only_dacl():
    """The pipe's DACL, read back: one entry, full access, for the current user only."""
    from beep_backend.winpipe import OwnerOnly

    me = OwnerOnly().sid
    backend = pipe_backend()
    try:
        sddl = _dacl_of(backend.address)
        assert sddl.startswith("D:P"), sddl
        entries = sddl[3:].strip("()").split(")(")
        assert len(entries) == 1, sddl
        kind, _flags, rights, _obj, _inherit, sid = entries[0].split(";")
        assert kind == "A" and rights in ("GA", "FA") and sid == me, sddl
    finally:
        backend.stop()


def _dacl_of(name):
    import ctypes
    from ctypes import wintypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
    advapi32.GetNamedSecurityInfoW.argtypes = [
        wintypes.LPCWSTR,
        ctypes.c_int,
        wintypes.DWORD,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW.argtypes = [
        ctypes.c_void_p,
        wintypes.DWORD,
        wintypes.DWORD,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
    ]
    se_file_object, dacl_info = 1, 4
    dacl, sd, text = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    err = advapi32.GetNamedSecurityInfoW(
        name, se_file_object, dacl_info, None, None, ctypes.byref(dacl), None, ctypes.byref(sd)
    )
    assert err == 0, "GetNamedSecurityInfoW: error %d" % err
    assert sd.value, "no security descriptor for %s" % name
    convert = advapi32.ConvertSecurityDescriptorToStringSecurityDescriptorW
    ok = convert(sd, 1, dacl_info, ctypes.byref(text), None)
    assert ok, ctypes.WinError(ctypes.get_last_error())
    return ctypes.wstring_at(text.value)


def check_parent_watchdog():
    """`BEEP_PARENT_PID`: the parent survives the checks; the backend exits when it ends."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.DEVNULL)
    backend = pipe_backend(env={"BEEP_PARENT_PID": str(parent.pid)})
    try:
        c = PipeClient(backend.address)
        time.sleep(1.2)  # two rounds of the Unix watchdog's 0.5 s check
        assert parent.poll() is None, "the watchdog killed the parent (os.kill(pid, 0) on Windows)"
        assert c.call("eval", expr="1")["value"] == 1
        parent.kill()
        parent.wait(10)
        assert backend.proc.wait(5) == 0
    finally:
        parent.kill()
        backend.stop()


def check_http():
    backend = Backend("http")
    try:
        assert backend.ready["event"] == "ready", backend.ready
        host, port = backend.address.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
        for path, body, want in (("/v1/eval", {"expr": "1+1"}, 2), ("/v1/exec", {"code": "2*3"}, 6)):
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["value"] == want
        conn.request("POST", "/v1/eval", "{}", {"Authorization": "Bearer wrong"})
        response = conn.getresponse()
        response.read()
        assert response.status == 401
    finally:
        backend.stop()


# ---- fd 1/2 of calls (C code, os.write, the std handles) ------------------------------------

# Run in the session first: `write_std_handle(data, which)` is C code writing to the process's
# std handle (`WriteFile(GetStdHandle(STD_OUTPUT_HANDLE))`), as a C extension would.
FD_SETUP = """
import ctypes, os, sys, threading, time
from ctypes import wintypes
_k32 = ctypes.WinDLL('kernel32', use_last_error=True)
_k32.GetStdHandle.restype = wintypes.HANDLE
_k32.GetStdHandle.argtypes = [wintypes.DWORD]
_k32.WriteFile.argtypes = [
    wintypes.HANDLE, ctypes.c_char_p, wintypes.DWORD, ctypes.POINTER(wintypes.DWORD), ctypes.c_void_p
]
def write_std_handle(data, which=-11):
    n = wintypes.DWORD()
    ok = _k32.WriteFile(_k32.GetStdHandle(which & 0xFFFFFFFF), data, len(data), ctypes.byref(n), None)
    assert ok, ctypes.WinError(ctypes.get_last_error())
    return n.value
"""
MIB = 1 << 20


def _wait_for_log(backend, text, timeout=10):
    """Wait until the backend's log (its real stderr) holds `text`."""
    deadline = time.monotonic() + timeout
    while text not in backend.log():
        assert time.monotonic() < deadline, "no %r in the log: %s" % (text, backend.log())
        time.sleep(0.01)


def _fd_calls(call, backend):
    """The fd checks every transport shares; `call(op, **fields)` is the transport's answer.
    A failure says where the missing output went (the backend's log is its real stderr)."""
    try:
        _fd_calls_unlogged(call)
    except AssertionError as exc:
        time.sleep(0.3)  # what the fd thread reads meanwhile
        raise AssertionError("%s\n-- the backend's log:\n%s" % (exc, backend.log()[-3000:])) from None


def _fd_calls_unlogged(call):
    assert "error" not in call("exec", code=FD_SETUP)
    for i in range(20):
        code = "os.write(1, b'fd-%d\\n')\nos.write(2, b'err-%d\\n')\nprint('py-%d')" % (i, i, i)
        out = call("exec", code=code)
        assert out["stdout"] in ("fd-%d\npy-%d\n" % (i, i), "py-%d\nfd-%d\n" % (i, i)), out
        assert out["stderr"] == "err-%d\n" % i, out
        # Written right before an eval ends: its own output (events), not the next exec's.
        assert call("eval", expr="os.write(1, b'tail-%d\\n')" % i)["value"] == 6 + len(str(i))
    out = call("exec", code="write_std_handle(b'std-out\\n')\nwrite_std_handle(b'std-err\\n', -12)")
    assert (out["stdout"], out["stderr"]) == ("std-out\n", "std-err\n"), out
    # Where dup2 did not move the std handle (a program without a console), the server does.
    code = "_k32.SetStdHandle.argtypes = [wintypes.DWORD, wintypes.HANDLE]\n"
    code += "_k32.SetStdHandle(-11 & 0xFFFFFFFF, None)\n"
    code += "from beep_backend import winfd\nwinfd.follow_std_handles()\nwrite_std_handle(b'again\\n')"
    out = call("exec", code=code)
    assert out["stdout"] == "again\n", out
    # A child process writes to the std handles it inherited: fd 1/2 of the call.
    code = "import subprocess\nsubprocess.run([sys.executable, '-c', 'print(\"from the child\")'])\nNone"
    out = call("exec", code=code)
    assert out["stdout"].replace("\r\n", "\n") == "from the child\n", out
    # 1 MiB through each pipe (64 KiB each) at once, fd 2 from a thread: no deadlock, all of it.
    code = "t = threading.Thread(target=os.write, args=(2, b'e' * %d))\nt.start()\n" % MIB
    code += "n = os.write(1, b'o' * %d)\nt.join()\nn" % MIB
    out = call("exec", code=code)
    assert out["value"] == MIB, out.get("error", out["value"])
    assert out["stdout"] == "o" * MIB and out["stderr"] == "e" * MIB, (len(out["stdout"]), len(out["stderr"]))
    assert call("exec", code="print('clean')")["stdout"] == "clean\n"


def _late_thread(call, backend):
    """A thread of a call that writes to fd 1 after the call ended: to the log, not a later call."""
    code = "threading.Timer(0.3, os.write, (1, b'late-line\\n')).start()\nos.write(1, b'own\\n')\nNone"
    assert call("exec", code=code)["stdout"] == "own\n"
    _wait_for_log(backend, "late-line\n")
    out = call("exec", code="print('next')")
    assert (out["stdout"], out["stderr"]) == ("next\n", ""), out


# Writes `first`, waits (up to 10 s) for the flag file the client makes once it got `first`,
# then says on fd 2 whether the flag came: `last` only if `first` was streamed while it ran.
STREAMED = """
os.write(1, b'first\\n')
deadline = time.monotonic() + 10
while not os.path.exists(%r) and time.monotonic() < deadline:
    time.sleep(0.01)
os.write(2, b'last\\n' if time.monotonic() < deadline else b'no flag within 10 s\\n')
"""


def check_fd_capture_pipe():
    """fd 1/2 of a call, on the named pipe: in its answer and its stream, in no other call's."""
    import tempfile

    backend = pipe_backend()
    try:
        c = PipeClient(backend.address)
        _fd_calls(c.call, backend)
        _late_thread(c.call, backend)
        # Streamed: `first` arrives while the call still runs; the answer has no stdout of its own.
        flag = os.path.join(tempfile.mkdtemp(), "flag")
        c.send({"id": 999, "op": "exec", "code": STREAMED % flag, "stream": True})
        got = {"stdout": "", "stderr": ""}
        while True:
            frame = c.recv()
            assert frame is not None and frame["id"] == 999, frame
            if frame.get("event") != "output":
                break
            got[frame["stream"]] += frame["data"]
            if got["stdout"] == "first\n" and not os.path.exists(flag):
                open(flag, "w").close()
        assert "error" not in frame and frame["stdout"] == "", frame
        assert got == {"stdout": "first\n", "stderr": "last\n"}, got
        # The log is still the server's real stderr.
        raw = PipeClient(backend.address)
        raw.send_raw(struct.pack(">I", 100) + b"{")
        raw.close()
        _wait_for_log(backend, "beep_backend: pipe: connection closed inside a frame\n")
    finally:
        backend.stop()


def check_fd_capture_http():
    """fd 1/2 of a call, over HTTP: in its answer and its SSE stream, in no other call's."""
    import socket
    import tempfile

    backend = Backend("http")
    try:
        host, port = backend.address.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}

        def call(op, **fields):
            conn.request("POST", "/v1/" + op, json.dumps(fields), headers)
            return json.loads(conn.getresponse().read())

        _fd_calls(call, backend)
        _late_thread(call, backend)
        flag = os.path.join(tempfile.mkdtemp(), "flag")
        sse = http.client.HTTPConnection(host, int(port), timeout=60)
        streamed = dict(headers, Accept="text/event-stream")
        sse.request("POST", "/v1/exec", json.dumps({"code": STREAMED % flag}), streamed)
        response = sse.getresponse()
        assert response.status == 200, response.status
        got = {"stdout": "", "stderr": ""}
        kind = None
        while True:
            line = response.readline().decode()
            assert line, "the stream ended without a result"
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if kind == "result":
                    break
                got[data["stream"]] += data["data"]
                if got["stdout"] == "first\n" and not os.path.exists(flag):
                    open(flag, "w").close()
        assert "error" not in data and data["stdout"] == "", data
        assert got == {"stdout": "first\n", "stderr": "last\n"}, got
        raw = socket.create_connection((host, int(port)))
        raw.sendall(b"POST /v1/eval HTTP/1.1\r\n")
        raw.close()
        _wait_for_log(backend, "beep_backend: http: connection closed inside a request head\n")
    finally:
        backend.stop()


def _capture_files(pid):
    import glob
    import tempfile

    return sorted(glob.glob(os.path.join(tempfile.gettempdir(), "beep-backend-%d-*" % pid)))


def _until(what, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


# A child that inherited fd 1 writes `child-early` now and `child-late` once the flag file
# exists (or 20 s passed: a failed check leaves no process behind), then ends.
CHILD = """
import os, time
os.write(1, b'child-early\\n')
deadline = time.monotonic() + 20
while not os.path.exists(%r) and time.monotonic() < deadline:
    time.sleep(0.01)
os.write(1, b'child-late\\n')
"""


def check_fd_files_rotate():
    """fd 1/2 write to files: a file that has grown is replaced by a new one, the old one is
    read for as long as someone (a child) can write to it, then deleted; none is left when
    the backend ends."""
    import tempfile

    backend = pipe_backend()
    try:
        files = _capture_files(backend.proc.pid)
        assert sorted(f[-4:] for f in files) == [".err", ".out"], files
        c = PipeClient(backend.address)
        flag = os.path.join(tempfile.mkdtemp(), "flag")
        code = "import os, subprocess, sys, time\nfrom beep_backend import winfd\n"
        code += "winfd.ROTATE_AT = 4096\nwinfd.WRITERS_EVERY = 0.05\n"
        code += "child = subprocess.Popen([sys.executable, '-c', %r])\n" % (CHILD % flag)
        code += "time.sleep(0.5)\nos.fstat(1).st_ino"
        out = c.call("exec", code=code)
        assert "error" not in out, out
        first = out["value"]
        assert out["stdout"].replace("\r\n", "\n") == "child-early\n", out
        # 5000 bytes: past ROTATE_AT. The fd thread reads them and sees that within 15 ms,
        # but fd 1 stays the same file while the call runs (a rotation would close the
        # handle its code uses: `Invalid handle`); the end of a later call makes a new file.
        code = "os.write(1, b'x' * 5000)\ndeadline = time.monotonic() + 0.3\nsame = True\n"
        code += (
            "while time.monotonic() < deadline:\n    same = same and os.fstat(1).st_ino == %d\nsame" % first
        )
        out = c.call("exec", code=code)
        assert out["stdout"] == "x" * 5000 and out["value"] is True, out
        deadline = time.monotonic() + 5
        while True:
            out = c.call(
                "exec", code="for _ in range(50):\n    os.fstat(1)\n    time.sleep(0.001)\nos.fstat(1).st_ino"
            )
            assert "value" in out, out
            if out["value"] != first or time.monotonic() > deadline:
                break
        assert out["value"] != first, "fd 1 was not rotated"
        assert len(_capture_files(backend.proc.pid)) == 3, _capture_files(backend.proc.pid)
        out = c.call("exec", code="os.write(1, b'new\\n')\nprint('py')")
        assert sorted(out["stdout"].splitlines()) == ["new", "py"], out
        # The child still writes to the old file: its line is this call's.
        open(flag, "w").close()
        out = c.call("exec", code="child.wait(10)")
        assert out["value"] == 0 and out["stdout"].replace("\r\n", "\n") == "child-late\n", out
        # No one can write to the old file any more: it is read to its end and deleted.
        assert _until(lambda: len(_capture_files(backend.proc.pid)) == 2), _capture_files(backend.proc.pid)
        out = c.call("exec", code="os.write(1, b'after\\n')")
        assert out["stdout"] == "after\n", out
        assert "rotating" not in backend.log(), backend.log()
    finally:
        backend.stop()
    assert _until(lambda: not _capture_files(backend.proc.pid)), _capture_files(backend.proc.pid)


CHECKS = {name[len("check_") :]: fn for name, fn in globals().items() if name.startswith("check_")}


def main(names):
    assert sys.platform == "win32", "these checks are for Windows (run them under Wine)"
    sys.path.insert(0, PACKAGE_ROOT)
    failed = []
    for name in names or CHECKS:
        started = time.monotonic()
        try:
            CHECKS[name]()
        except BaseException:
            failed.append(name)
            print("FAIL %s (%.1f s)\n%s" % (name, time.monotonic() - started, traceback.format_exc()))
        else:
            print("ok   %s (%.1f s)" % (name, time.monotonic() - started))
        sys.stdout.flush()
    summary = "%d checks, %d failed" % (len(names or CHECKS), len(failed))
    print(summary + (": " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
