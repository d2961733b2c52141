"""Start real backend processes and talk to them over each transport (test helpers)."""

import base64
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSPORTS = ("http", "pipe", "grpc")


def backend_env(token=None, **extra):
    env = dict(os.environ)
    env.pop("BEEP_BACKEND_TOKEN", None)
    env.pop("BEEP_PARENT_PID", None)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    if token is not None:
        env["BEEP_BACKEND_TOKEN"] = token
    env.update(extra)
    return env


class Backend:
    """A running `python -m beep_backend` subprocess."""

    def __init__(
        self, transport, token="", args=(), env=None, python=sys.executable, python_args=(), token_stdin=False
    ):
        """`token_stdin`: hand the token over stdin (`--token-stdin`, as the supervisor does)."""
        self.transport = transport
        self.token = token if token != "" else secrets.token_hex(32)
        if token_stdin:
            args = ("--token-stdin", *args)
        self.proc = subprocess.Popen(
            [python, *python_args, "-m", "beep_backend", "--transport", transport, *args],
            stdin=subprocess.PIPE if token_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else backend_env(None if token_stdin else self.token),
        )
        if token_stdin:
            try:
                self.proc.stdin.write(self.token.encode() + b"\n")
                self.proc.stdin.close()
            except OSError:
                pass  # it exited already; the missing ready line says so
        self.stderr_lines = []
        line = self.proc.stdout.readline()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.event = json.loads(line) if line else {"event": "none"}
        self.address = self.event.get("address")

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def client(self, token=None):
        cls = {"http": HttpClient, "pipe": PipeClient, "grpc": GrpcClient}[self.transport]
        return cls(self.address, self.token if token is None else token)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()

    def alive(self):
        return self.proc.poll() is None


class HttpClient:
    def __init__(self, address, token):
        host, port = address.rsplit(":", 1)
        self.address = address
        self.token = token
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.last_status = None

    def raw(self, method, path, body=b"", headers=None):
        h = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        resp = self.conn.getresponse()
        data = resp.read()
        self.last_status = resp.status
        return resp.status, _strip(self, json.loads(data))

    def request(self, op, **fields):
        return self.raw("POST", "/v1/" + op, json.dumps(fields).encode())[1]

    def close(self):
        self.conn.close()


class PipeClient:
    def __init__(self, address, token, auth=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(address)
        self.next_id = 0
        self.buf = b""
        if auth:
            answer = self.roundtrip({"id": 0, "op": "auth", "token": token})
            assert answer == {"id": 0, "value": True}, answer

    def send_frame(self, obj):
        """Send one frame; False if the server has closed the connection already."""
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        try:
            self.sock.sendall(len(data).to_bytes(4, "big") + data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def recv_frame(self):
        """The next frame as a dict, or None at end of stream."""
        while True:
            if len(self.buf) >= 4:
                size = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) >= 4 + size:
                    frame, self.buf = self.buf[4 : 4 + size], self.buf[4 + size :]
                    return _strip(self, json.loads(frame))
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def roundtrip(self, obj):
        self.send_frame(obj)
        return self.recv_frame()

    def request(self, op, **fields):
        self.next_id += 1
        rid = self.next_id
        answer = self.roundtrip({"id": rid, "op": op, **fields})
        assert answer["id"] == rid, answer
        del answer["id"]
        return answer

    def close(self):
        self.sock.close()


class GrpcClient:
    def __init__(self, address, token):
        import grpc

        from beep_backend import backend_pb2 as pb
        from beep_backend import backend_pb2_grpc as pb_grpc

        self.grpc = grpc
        self.pb = pb
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.BackendStub(self.channel)
        self.metadata = [("authorization", "Bearer " + token)]

    def rpc(self, name, message, timeout=30):
        return getattr(self.stub, name)(message, metadata=self.metadata, timeout=timeout)

    @staticmethod
    def _error(e):
        return {"error": {"type": e.type, "message": e.message, "traceback": e.traceback}}

    def _value(self, reply):
        self.last_call = reply.call
        if reply.WhichOneof("result") == "error":
            return self._error(reply.error)
        return {"value": json.loads(reply.value_json)}

    def request(self, op, **f):
        pb = self.pb
        session = f.get("session", "")
        call = f.get("call", "")
        dumps = json.dumps
        if op == "exec":
            req = pb.ExecRequest(session=session, code=f["code"], call=call)
            if "timeout" in f:
                req.timeout = f["timeout"]
            r = self.rpc("Exec", req)
            self.last_call = r.call
            out = {"stdout": r.stdout, "stderr": r.stderr}
            if r.HasField("error"):
                out.update(self._error(r.error))
            else:
                out["value"] = json.loads(r.value_json)
            return out
        if op == "eval":
            return self._value(self.rpc("Eval", pb.EvalRequest(session=session, expr=f["expr"], call=call)))
        if op == "import":
            return self._value(
                self.rpc("Import", pb.ImportRequest(session=session, module=f["module"], call=call))
            )
        if op == "create":
            target = f["target"]
            kw = {"handle": target["$handle"]} if isinstance(target, dict) else {"path": target}
            req = pb.CreateRequest(
                session=session,
                args_json=dumps(f.get("args", [])),
                kwargs_json=dumps(f.get("kwargs", {})),
                call=call,
                **kw,
            )
            return self._value(self.rpc("Create", req))
        handle = f.get("handle", "")
        if isinstance(handle, dict):
            handle = handle["$handle"]
        if op == "call":
            req = pb.CallRequest(
                session=session,
                handle=handle,
                method=f["method"],
                args_json=dumps(f.get("args", [])),
                kwargs_json=dumps(f.get("kwargs", {})),
                call=call,
            )
            return self._value(self.rpc("Call", req))
        if op == "getattr":
            return self._value(
                self.rpc(
                    "GetAttr", pb.GetAttrRequest(session=session, handle=handle, name=f["name"], call=call)
                )
            )
        if op == "setattr":
            req = pb.SetAttrRequest(
                session=session, handle=handle, name=f["name"], value_json=dumps(f["value"]), call=call
            )
            return self._value(self.rpc("SetAttr", req))
        if op == "release":
            return self._value(self.rpc("Release", pb.ReleaseRequest(session=session, handle=handle)))
        if op == "handles":
            r = self.rpc("Handles", pb.HandlesRequest(session=session))
            if r.HasField("error"):
                return self._error(r.error)
            return {
                "value": [
                    {
                        "id": h.id,
                        "type": h.type,
                        "repr": h.repr,
                        "created": h.created,
                        "last_used": h.last_used,
                        "age": h.age,
                    }
                    for h in r.handles
                ]
            }
        if op == "info":
            r = self.rpc("Info", pb.InfoRequest())
            value = {
                k: getattr(r, k)
                for k in (
                    "python_version",
                    "executable",
                    "prefix",
                    "env_name",
                    "pid",
                    "transport",
                    "started_at",
                    "handles",
                    "busy",
                )
            }
            value["env_name"] = value["env_name"] or None
            return {"value": value}
        if op == "interrupt":
            return {"value": self.rpc("Interrupt", pb.InterruptRequest(call=call)).interrupted}
        if op == "calls":
            r = self.rpc("Calls", pb.CallsRequest(session=session, all=f.get("all", False)))
            rows = []
            for c in r.calls:
                rows.append(
                    {
                        "call": c.call,
                        "op": c.op,
                        "session": c.session,
                        "state": c.state,
                        "started": c.started,
                        "duration": c.duration if c.HasField("duration") else None,
                        "output_bytes": c.output_bytes,
                    }
                )
            return {"value": rows}
        if op == "lease":
            return self._value(self.rpc("Lease", pb.LeaseRequest(session=session, seconds=f["seconds"])))
        if op == "shutdown":
            return {"value": self.rpc("Shutdown", pb.ShutdownRequest()).accepted}
        raise ValueError(op)

    def close(self):
        self.channel.close()


def _strip(client, answer):
    """Take `call`/`seq` out of an answer (tests of other things compare whole answers) unless
    `client.strip_live` is False; the call id is kept as `client.last_call`."""
    if isinstance(answer, dict) and getattr(client, "strip_live", True) and "event" not in answer:
        client.last_call = answer.pop("call", None)
        answer.pop("seq", None)
    return answer


def b64(data):
    return {"$bytes": base64.b64encode(data).decode()}


def wait_for(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
