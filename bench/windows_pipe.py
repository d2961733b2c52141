"""Windows-side half of bench/windows.sh: run by python.org's CPython for Windows (under Wine).

    python.exe bench/windows_pipe.py [--calls N] [--rounds R] [--grpc-path DIR] [--out FILE]

1. Named-pipe round trip, `eval 1+1`: the `beep_backend` pipe server against a raw Python
   named-pipe echo with the same framing (4-byte big-endian length + JSON, auth frame first),
   from the same blocking client; p50/p90/p99 in microseconds.
2. Cold start to first answer per transport: spawn `python -m beep_backend`, read its ready
   line, connect, first `eval 1+1` answered (median of a few runs).

Prints one JSON object on stdout.

    python.exe bench/windows_pipe.py --mark [--calls N]

(run with WINEDEBUG=+server by `bench/windows.sh requests`) N calls to each server between two
marks in Wine's trace of server requests (an `OpenProcess` of a pid no process has), for
counting the round trips to the Wine server per call: that count does not move with the
machine's load, the timings do.
"""

import _winapi
import http.client
import json
import os
import statistics
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.join(os.path.dirname(HERE), "python")
TOKEN = "ab" * 32
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
OPEN_EXISTING = 3
ERROR_PIPE_BUSY = 231
PYTHON_NAME = {"rpc": "grpc"}  # the server's name for the gRPC transport


# ---- the client (the same for both servers) ---------------------------------------------------


class PipeClient:
    def __init__(self, name):
        deadline = time.monotonic() + 5
        while True:
            try:
                self.h = _winapi.CreateFile(
                    name, GENERIC_READ | GENERIC_WRITE, 0, 0, OPEN_EXISTING, 0, 0
                )
                break
            except OSError as exc:
                if exc.winerror != ERROR_PIPE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
        self.buf = b""
        self.next_id = 0
        assert self.request({"op": "auth", "token": TOKEN})["value"] is True

    def request(self, req):
        req = dict(req, id=self.next_id)
        self.next_id += 1
        body = json.dumps(req).encode()
        _winapi.WriteFile(self.h, struct.pack(">I", len(body)) + body)
        head = self._read(4)
        (size,) = struct.unpack(">I", head)
        reply = json.loads(self._read(size))
        assert reply.get("id") == req["id"], reply
        return reply

    def _read(self, n):
        while len(self.buf) < n:
            data, _ = _winapi.ReadFile(self.h, 65536)
            if not data:
                raise EOFError
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self):
        _winapi.CloseHandle(self.h)


# ---- the raw echo server (same framing, answers from the reader thread) -----------------------


def echo_server(name, ready):
    """Serve `name`: each frame is answered `{"id": <its id>, "value": 2}`."""
    first = True

    def instance():
        nonlocal first
        mode = 0x3 | (0x00080000 if first else 0)  # DUPLEX | FIRST_PIPE_INSTANCE
        first = False
        return _winapi.CreateNamedPipe(name, mode, 0x8, 255, 65536, 65536, 0, 0)

    def serve(h):
        buf = b""
        try:
            while True:
                while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                    data, _ = _winapi.ReadFile(h, 65536)
                    if not data:
                        return
                    buf += data
                (size,) = struct.unpack(">I", buf[:4])
                req = json.loads(buf[4 : 4 + size])
                buf = buf[4 + size :]
                value = True if req.get("op") == "auth" else 2
                body = json.dumps({"id": req.get("id"), "value": value}).encode()
                _winapi.WriteFile(h, struct.pack(">I", len(body)) + body)
        except OSError:
            return
        finally:
            _winapi.CloseHandle(h)

    h = instance()
    ready.set()
    while True:
        try:
            _winapi.ConnectNamedPipe(h)
        except OSError:
            pass
        nxt = instance()
        threading.Thread(target=serve, args=(h,), daemon=True).start()
        h = nxt


# ---- measurements ----------------------------------------------------------------------------


def percentiles(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {
        "p50_us": round(pick(0.5), 1),
        "p90_us": round(pick(0.9), 1),
        "p99_us": round(pick(0.99), 1),
    }


def interleaved(clients, calls, req, rounds=10):
    """Round trips of each client in alternating rounds (load that comes and goes hits all of
    them alike): percentiles per client over all its calls, the ratio of the p50s, and the
    median of the per-round p50 ratios (second client / first)."""
    for client in clients.values():
        for _ in range(200):  # warm up
            client.request(req)
    per = max(1, calls // rounds)
    samples = {name: [] for name in clients}
    round_p50 = {name: [] for name in clients}
    for r in range(rounds):
        order = list(clients.items()) if r % 2 == 0 else list(reversed(clients.items()))
        for name, client in order:
            these = []
            for _ in range(per):
                t = time.perf_counter()
                reply = client.request(req)
                these.append((time.perf_counter() - t) * 1e6)
                assert reply.get("value") == 2, reply
            samples[name] += these
            round_p50[name].append(statistics.median(these))
    result = {name: percentiles(s) for name, s in samples.items()}
    first, second = list(clients)
    result["ratio_p50"] = round(result[second]["p50_us"] / result[first]["p50_us"], 2)
    result["ratio_per_round_median"] = round(
        statistics.median(b / a for a, b in zip(round_p50[first], round_p50[second])), 2
    )
    return result


def spawn_backend(transport, extra_path=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PYTHON_DIR, extra_path) if p)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "beep_backend",
            "--transport",
            PYTHON_NAME.get(transport, transport),
            "--token-stdin",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    proc.stdin.write((TOKEN + "\n").encode())
    proc.stdin.close()
    ready = json.loads(proc.stdout.readline())
    assert ready["event"] == "ready", ready
    return proc, ready["address"], started


def stop(proc):
    proc.kill()
    proc.wait()


def first_answer(transport, extra_path=None):
    proc, address, started = spawn_backend(transport, extra_path)
    try:
        if transport == "pipe":
            client = PipeClient(address)
            assert client.request({"op": "eval", "expr": "1+1"})["value"] == 2
            client.close()
        elif transport == "http":
            host, port = address.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port))
            body = json.dumps({"expr": "1+1"})
            headers = {
                "Authorization": "Bearer " + TOKEN,
                "Content-Type": "application/json",
            }
            conn.request("POST", "/v1/eval", body, headers)
            assert json.loads(conn.getresponse().read())["value"] == 2
            conn.close()
        else:
            import grpc

            sys.path.insert(0, PYTHON_DIR)
            from beep_backend import backend_pb2, backend_pb2_grpc

            channel = grpc.insecure_channel(address)
            stub = backend_pb2_grpc.BackendStub(channel)
            stub.Eval(
                backend_pb2.EvalRequest(expr="1+1"),
                metadata=[("authorization", "Bearer " + TOKEN)],
            )
            channel.close()
        return (time.perf_counter() - started) * 1e3
    finally:
        stop(proc)


MARKS = {"backend": (0xDEAD0, 0xDEAD4), "raw_echo": (0xDEAD8, 0xDEADC)}


def mark(pid):
    """A request to the Wine server that its trace shows with `pid`."""
    try:
        _winapi.OpenProcess(0x1000, False, pid)
    except OSError:
        pass


def echo_and_backend():
    """The raw echo (on a thread of this process) and a `beep_backend` pipe server:
    `(echo's pipe name, backend's process, backend's pipe name)`."""
    name = r"\\.\pipe\beep-bench-echo-%d" % os.getpid()
    ready = threading.Event()
    threading.Thread(target=echo_server, args=(name, ready), daemon=True).start()
    ready.wait()
    proc, address, _ = spawn_backend("pipe")
    return name, proc, address


def marked(calls):
    name, proc, address = echo_and_backend()
    try:
        clients = {"backend": PipeClient(address), "raw_echo": PipeClient(name)}
        req = {"op": "eval", "expr": "1+1"}
        for client in clients.values():
            for _ in range(50):  # warm: the first calls' imports and allocations
                client.request(req)
        time.sleep(0.3)
        for which, client in clients.items():
            start, end = MARKS[which]
            mark(start)
            for _ in range(calls):
                client.request(req)
            mark(end)
            time.sleep(0.3)
    finally:
        stop(proc)


def main():
    args = sys.argv[1:]
    calls = int(args[args.index("--calls") + 1]) if "--calls" in args else 2000
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 10
    if "--mark" in args:
        return marked(calls)
    grpc_path = args[args.index("--grpc-path") + 1] if "--grpc-path" in args else None
    out = args[args.index("--out") + 1] if "--out" in args else None
    result = {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "calls": calls,
        "rounds": rounds,
    }

    name, proc, address = echo_and_backend()
    try:
        clients = {
            "raw_echo": PipeClient(name),
            "beep_backend_pipe": PipeClient(address),
        }
        result.update(interleaved(clients, calls, {"op": "eval", "expr": "1+1"}, rounds))
        for client in clients.values():
            client.close()
    finally:
        stop(proc)

    cold = {}
    transports = ["pipe", "http"]
    if grpc_path:
        transports.append("rpc")
    for transport in transports:
        if transport == "rpc":
            sys.path.insert(0, grpc_path)
        runs = [
            first_answer(transport, grpc_path if transport == "rpc" else None)
            for _ in range(3)
        ]
        cold[transport] = {
            "median_ms": round(statistics.median(runs), 1),
            "runs_ms": [round(r, 1) for r in runs],
        }
    result["cold_start_to_first_answer"] = cold
    text = json.dumps(result, indent=1)
    print(text)
    if (
        out
    ):  # (what Wine's server prints on our stdout when it exits does not end up there)
        with open(out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
