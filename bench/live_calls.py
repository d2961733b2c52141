"""Live calls benchmark: plain `eval 1+1` latency, old server vs new, and output throughput.

    .venv-test/bin/python bench/live_calls.py [--old main] [--calls 4000] [--rounds 8] [--lines 100000]

- p50/p99 of `eval 1+1` round trips on each transport, against the Python backend of git rev
  `--old` (default `main`, extracted with `git archive` into a temp dir) and the one of this
  checkout, side by side in one run. The two servers run at the same time and are measured in
  alternating rounds (`--rounds` x `--calls` per server), so load from other processes hits
  both alike. Ratio = new / old p50 (goal: <= 1.05).
- Throughput of a call that prints `--lines` short lines: streamed (pipe `stream`, HTTP SSE,
  gRPC ExecStream; from the request to the last event, every line checked) against the same
  lines returned at the end in one `exec` answer (new and old server); the best of
  `--repeat` tries each (one try moves by 30 % and more on a shared machine).

The clients are small blocking Python clients (the same for old and new). Prints a Markdown
table; `--out FILE` also writes it there.
"""

import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))

from live_clients import stream  # noqa: E402

TRANSPORTS = ("pipe", "http", "grpc")


def extract_old(rev, into):
    data = subprocess.run(
        ["git", "-C", ROOT, "archive", rev, "python/beep_backend"],
        check=True,
        capture_output=True,
    ).stdout
    path = os.path.join(into, "old.tar")
    with open(path, "wb") as f:
        f.write(data)
    with tarfile.open(path) as t:
        t.extractall(into)
    return os.path.join(into, "python")


class Server:
    def __init__(self, python_dir, transport):
        self.token = secrets.token_hex(16)
        env = dict(os.environ, PYTHONPATH=python_dir, BEEP_BACKEND_TOKEN=self.token)
        env.pop("BEEP_PARENT_PID", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "beep_backend", "--transport", transport],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=python_dir,
        )
        self.ready = json.loads(self.proc.stdout.readline())
        self.address = self.ready["address"]
        self.transport = transport

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class PipeClient:
    def __init__(self, server):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(server.address)
        self.buf = b""
        self.id = 0
        self.call({"op": "auth", "token": server.token})

    def send(self, req):
        self.id += 1
        data = json.dumps({"id": self.id, **req}).encode()
        self.sock.sendall(len(data).to_bytes(4, "big") + data)

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                n = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) >= 4 + n:
                    frame, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
                    return json.loads(frame)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def call(self, req):
        self.send(req)
        return self.recv()

    def eval(self):
        return self.call({"op": "eval", "expr": "1+1"})["value"]


class HttpClient:
    def __init__(self, server):
        host, port = server.address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port))
        self.headers = {
            "Authorization": "Bearer " + server.token,
            "Content-Type": "application/json",
        }

    def call(self, op, req):
        self.conn.request("POST", "/v1/" + op, json.dumps(req).encode(), self.headers)
        return json.loads(self.conn.getresponse().read())

    def eval(self):
        return self.call("eval", {"expr": "1+1"})["value"]


class GrpcClient:
    def __init__(self, server):
        import grpc

        from beep_backend import backend_pb2 as pb
        from beep_backend import backend_pb2_grpc as pb_grpc

        self.pb = pb
        self.channel = grpc.insecure_channel(server.address)
        self.stub = pb_grpc.BackendStub(self.channel)
        self.md = [("authorization", "Bearer " + server.token)]
        self.req = pb.EvalRequest(expr="1+1")

    def eval(self):
        return json.loads(self.stub.Eval(self.req, metadata=self.md).value_json)

    def exec(self, code):
        return self.stub.Exec(
            self.pb.ExecRequest(code=code), metadata=self.md, timeout=600
        )


def client_for(server):
    return {"pipe": PipeClient, "http": HttpClient, "grpc": GrpcClient}[
        server.transport
    ](server)


def cpu_seconds(pid):
    """User + system CPU time of a process (Linux), else None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(old, new, calls, rounds):
    clients = {"old": client_for(old), "new": client_for(new)}
    pids = {"old": old.proc.pid, "new": new.proc.pid}
    cpu = {"old": 0.0, "new": 0.0}
    samples = {"old": [], "new": []}
    for c in clients.values():
        for _ in range(300):  # warm up
            assert c.eval() == 2
    clock = time.perf_counter
    for r in range(rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for name in order:
            c = clients[name]
            out = samples[name]
            before = cpu_seconds(pids[name])
            for _ in range(calls):
                t = clock()
                c.eval()
                out.append(clock() - t)
            after = cpu_seconds(pids[name])
            if before is not None and after is not None:
                cpu[name] += after - before
    result = {}
    for name, s in samples.items():
        rounds_p50 = [
            statistics.median(s[i * calls : (i + 1) * calls]) for i in range(rounds)
        ]
        s = sorted(s)
        result[name] = (
            statistics.median(s) * 1e6,
            s[int(len(s) * 0.99)] * 1e6,
            rounds_p50,
        )
    # The ratio of each round's p50 (old and new ran back to back), then their median: load
    # that changes between rounds cancels out.
    ratios = [n / o for o, n in zip(result["old"][2], result["new"][2])]
    result["ratio"] = statistics.median(ratios)
    result["cpu"] = {
        name: cpu[name] / (calls * rounds) * 1e6 for name in cpu
    }  # us per call
    return result


def printing_code(lines):
    return "for i in range(%d):\n    print('line', i)\n" % lines


def check_lines(text, lines):
    got = text.splitlines()
    assert (
        len(got) == lines and got[0] == "line 0" and got[-1] == "line %d" % (lines - 1)
    ), (len(got), got[:2])


def returned_at_end(server, lines):
    code = printing_code(lines)
    c = client_for(server)
    t = time.perf_counter()
    if server.transport == "pipe":
        out = c.call({"op": "exec", "code": code})["stdout"]
    elif server.transport == "http":
        out = c.call("exec", {"code": code})["stdout"]
    else:
        out = c.exec(code).stdout
    took = time.perf_counter() - t
    check_lines(out, lines)
    return took


def streamed(server, lines):
    code = printing_code(lines)
    t = time.perf_counter()
    first = None
    parts = []
    events = 0
    for event in stream(
        server.transport, server.address, server.token, "exec", {"code": code}
    ):
        if event["event"] == "output":
            if first is None:
                first = time.perf_counter() - t
            parts.append(event["data"])
            events += 1
        elif event["event"] == "end":
            assert "error" not in event["body"], event
        else:
            raise AssertionError("unexpected event %r" % event)
    took = time.perf_counter() - t
    check_lines("".join(parts), lines)
    return took, first, events


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="main")
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument(
        "--transports", default=",".join(TRANSPORTS), help="comma-separated, e.g. pipe"
    )
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old_dir = extract_old(args.old, tmp)
        new_dir = os.path.join(ROOT, "python")
        for transport in args.transports.split(","):
            old, new = Server(old_dir, transport), Server(new_dir, transport)
            try:
                lat = latency(old, new, args.calls, args.rounds)
                if args.lines:
                    end_new = end_old = took = float("inf")
                    for _ in range(args.repeat):
                        end_new = min(end_new, returned_at_end(new, args.lines))
                        end_old = min(end_old, returned_at_end(old, args.lines))
                        got = streamed(new, args.lines)
                        if got[0] < took:
                            took, first, events = got
                else:
                    end_new = end_old = took = first = float("nan")
                    events = 0
            finally:
                old.stop()
                new.stop()
            rows.append((transport, lat, end_old, end_new, took, first, events))
            print(transport, "done", file=sys.stderr)
    load = os.getloadavg()[0]
    out = []
    out.append(
        "`eval 1+1` round trips, %d x %d calls per server, old (`%s`) and new interleaved; load average %.1f."
        % (args.rounds, args.calls, args.old, load)
    )
    out.append("")
    out.append(
        "| transport | old p50 us | new p50 us | new / old | median of per-round ratios | old p99 us "
        "| new p99 us | server CPU per call old / new us |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for transport, lat, *_ in rows:
        (op50, op99, _), (np50, np99, _) = lat["old"], lat["new"]
        out.append(
            "| %s | %.1f | %.1f | %.3f | %.3f | %.1f | %.1f | %.1f / %.1f |"
            % (
                transport,
                op50,
                np50,
                np50 / op50,
                lat["ratio"],
                op99,
                np99,
                lat["cpu"]["old"],
                lat["cpu"]["new"],
            )
        )
    out.append("")
    out.append(
        "A call printing %d short lines (`print('line', i)`), request to last byte, best of %d:"
        % (args.lines, args.repeat)
    )
    out.append("")
    out.append(
        "| transport | returned at the end, old s | returned at the end, new s | new / old "
        "| streamed, new s | streamed lines/s | first output after ms | events |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for transport, _lat, end_old, end_new, took, first, events in rows:
        out.append(
            "| %s | %.3f | %.3f | %.2f | %.3f | %.0f | %.1f | %d |"
            % (
                transport,
                end_old,
                end_new,
                end_new / end_old,
                took,
                args.lines / took,
                first * 1e3,
                events,
            )
        )
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
