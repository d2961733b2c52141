"""Round-trip latency and cold start of each backend transport, next to a raw baseline.

    .venv-test/bin/python python/bench/bench_transports.py [--calls 5000] [--starts 10]

For each transport it measures, in one run:
- p50/p99 of `eval 1+1` round trips against `python -m beep_backend`;
- the same for a raw echo server over the same kind of socket (a blocking threaded Unix-socket
  echo of length-prefixed frames; stdlib `http.server` with Nagle off; a grpcio unary echo);
- cold start: spawn -> ready line -> first answered call (median over --starts runs), for the
  backend and for the baseline server.
The client is the same small Python client for both columns, so the ratio compares servers.
Targets on the 2-core dev VM: pipe <= 2x baseline, HTTP <= 200 us, gRPC <= 450 us p50;
cold start pipe/HTTP <= 60 ms, gRPC <= 250 ms.
"""

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PIPE_BASELINE = r"""
import os, socket, sys, tempfile, threading
JSON = len(sys.argv) > 1  # the same server, but it decodes JSON, evals, encodes: Python's work floor
if JSON:
    import json
    code = compile("1+1", "<eval>", "eval")
d = tempfile.mkdtemp(); path = os.path.join(d, "echo.sock")
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(16)
def serve(c):
    buf = b""
    while True:
        while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
            chunk = c.recv(65536)
            if not chunk: return
            buf += chunk
        n = 4 + int.from_bytes(buf[:4], "big")
        if JSON:
            req = json.loads(buf[4:n])
            out = json.dumps({"id": req["id"], "value": eval(code, {})}).encode()
            c.sendall(len(out).to_bytes(4, "big") + out)
        else:
            c.sendall(buf[:n])
        buf = buf[n:]
print(path, flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

HTTP_BASELINE = r"""
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup(); self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print("127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
"""

GRPC_BASELINE = r"""
from concurrent import futures
import grpc
def echo(request, context): return request
h = grpc.method_handlers_generic_handler("bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8)); srv.add_generic_rpc_handlers((h,))
port = srv.add_insecure_port("127.0.0.1:0"); srv.start()
print("127.0.0.1:%d" % port, flush=True)
srv.wait_for_termination()
"""


# ---- clients -----------------------------------------------------------------------------


class PipeClient:
    def __init__(self, address, token=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(address)
        self.buf = b""
        if token is not None:
            self.call(json.dumps({"id": 0, "op": "auth", "token": token}).encode())
        self.frame = json.dumps({"id": 1, "op": "eval", "expr": "1+1"}).encode()

    def call(self, data):
        self.sock.sendall(len(data).to_bytes(4, "big") + data)
        buf = self.buf
        while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
            buf += self.sock.recv(65536)
        n = 4 + int.from_bytes(buf[:4], "big")
        self.buf = buf[n:]
        return buf[4:n]

    def eval(self):
        return self.call(self.frame)


class HttpClient:
    def __init__(self, address, token=None):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = json.dumps({"expr": "1+1"}).encode()
        auth = ("Authorization: Bearer %s\r\n" % token) if token else ""
        self.request = (
            "POST /v1/eval HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (address, auth, len(body))
        ).encode() + body
        self.buf = b""

    def eval(self):
        self.sock.sendall(self.request)
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                i = buf.lower().find(b"content-length:", 0, end)
                length = int(buf[i + 15 : buf.index(b"\r\n", i)])
                if len(buf) >= end + 4 + length:
                    body = buf[end + 4 : end + 4 + length]
                    self.buf = buf[end + 4 + length :]
                    return body
            buf += self.sock.recv(65536)


class GrpcBackendClient:
    def __init__(self, address, token):
        import grpc

        sys.path.insert(0, PYTHON_DIR)
        from beep_backend import backend_pb2 as pb
        from beep_backend import backend_pb2_grpc as pb_grpc

        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.BackendStub(self.channel)
        self.req = pb.EvalRequest(expr="1+1")
        self.md = [("authorization", "Bearer " + token)]

    def eval(self):
        return self.stub.Eval(self.req, metadata=self.md)


class GrpcEchoClient:
    def __init__(self, address, token=None):
        import grpc

        self.channel = grpc.insecure_channel(address)
        self.call = self.channel.unary_unary("/bench.Echo/Echo")
        self.data = json.dumps({"expr": "1+1"}).encode()

    def eval(self):
        return self.call(self.data)


# ---- servers -----------------------------------------------------------------------------


def spawn_backend(transport, flags=()):
    token = secrets.token_hex(32)
    env = dict(os.environ, BEEP_BACKEND_TOKEN=token, PYTHONPATH=PYTHON_DIR)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *flags, "-m", "beep_backend", "--transport", transport],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    address = json.loads(proc.stdout.readline())["address"]
    return proc, address, token, t0


def spawn_baseline(transport):
    if transport == "pipe-json":
        args = [sys.executable, "-S", "-c", PIPE_BASELINE, "json"]
    elif transport == "pipe":
        args = [sys.executable, "-S", "-c", PIPE_BASELINE]
    else:
        args = [sys.executable, "-c", HTTP_BASELINE if transport == "http" else GRPC_BASELINE]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    address = proc.stdout.readline().decode().strip()
    return proc, address, None, t0


CLIENTS = {
    ("pipe-json", "baseline"): PipeClient,
    ("pipe", "backend"): PipeClient,
    ("pipe", "baseline"): PipeClient,
    ("http", "backend"): HttpClient,
    ("http", "baseline"): HttpClient,
    ("grpc", "backend"): GrpcBackendClient,
    ("grpc", "baseline"): GrpcEchoClient,
}


def stop(proc):
    proc.kill()
    proc.wait()
    proc.stdout.close()


def measure_calls(transport, kind, calls):
    spawn = spawn_backend if kind == "backend" else spawn_baseline
    proc, address, token, _ = spawn(transport)
    try:
        client = CLIENTS[transport, kind](address, token)
        for _ in range(min(500, calls)):
            client.eval()
        samples = []
        clock = time.perf_counter
        for _ in range(calls):
            t = clock()
            client.eval()
            samples.append(clock() - t)
        samples.sort()
        return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6
    finally:
        stop(proc)


def measure_cold(transport, kind, starts, flags=()):
    times = []
    for _ in range(starts):
        if kind == "backend":
            proc, address, token, t0 = spawn_backend(transport, flags)
        else:
            proc, address, token, t0 = spawn_baseline(transport)
        try:
            CLIENTS[transport, kind](address, token).eval()
            times.append((time.perf_counter() - t0) * 1e3)
        finally:
            stop(proc)
    return statistics.median(times)


TARGETS = {"pipe": ("<= 2x base", 60), "http": ("<= 200 us", 60), "grpc": ("<= 450 us", 250)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--transports", default="pipe,http,grpc")
    args = parser.parse_args()
    # An installed package has its bytecode compiled (pip does it); do the same here, since
    # PYTHONDONTWRITEBYTECODE may be set and compiling from source would add to every start.
    import compileall

    compileall.compile_dir(os.path.join(PYTHON_DIR, "beep_backend"), quiet=1)
    rows = []
    for transport in args.transports.split(","):
        b50, b99 = measure_calls(transport, "backend", args.calls)
        r50, r99 = measure_calls(transport, "baseline", args.calls)
        bc = measure_cold(transport, "backend", args.starts)
        bcs = measure_cold(transport, "backend", args.starts, ("-S",))
        rc = measure_cold(transport, "baseline", args.starts)
        rows.append((transport, b50, b99, r50, r99, b50 / r50, bc, bcs, rc, bc / rc))
        print("measured %s" % transport, file=sys.stderr)
    json_floor = None
    if "pipe" in args.transports.split(","):
        json_floor = measure_calls("pipe-json", "baseline", args.calls)

    print(
        "python %s, %d calls, %d cold starts, %d cores"
        % (sys.version.split()[0], args.calls, args.starts, os.cpu_count() or 0)
    )
    head = (
        "transport",
        "p50 us",
        "p99 us",
        "base p50",
        "base p99",
        "p50 ratio",
        "cold ms",
        "cold -S",
        "base cold",
        "cold ratio",
        "target p50",
        "target cold",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for t, b50, b99, r50, r99, ratio, bc, bcs, rc, cratio in rows:
        target, cold_target = TARGETS.get(t, ("", 0))
        print(
            "| %s | %.1f | %.1f | %.1f | %.1f | %.2fx | %.1f | %.1f | %.1f | %.2fx | %s | <= %d ms |"
            % (t, b50, b99, r50, r99, ratio, bc, bcs, rc, cratio, target, cold_target)
        )
    if json_floor is not None:
        pipe = rows[[r[0] for r in rows].index("pipe")]
        print(
            "\npipe work floor: the baseline echo server that also decodes the JSON request, evals and "
            "encodes the answer: p50 %.1f us, p99 %.1f us (backend/floor %.2fx)"
            % (json_floor[0], json_floor[1], pipe[1] / json_floor[0])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
