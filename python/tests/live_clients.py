"""Streaming clients for live calls, one per transport (test helpers).

`stream(transport, address, token, op, fields)` and `attach(transport, address, token, call,
after)` yield the events of a call as dicts (`{"event": "output" | "dropped", ...}`) and last
its end as `{"event": "end", "status": ..., "body": {...}}`. Each yields as soon as an event
arrives. Run as a script, it prints each event as one JSON line with its arrival time `t`
(the tests kill that process mid-call to drop a client the hard way):

    python live_clients.py TRANSPORT ADDRESS TOKEN stream|attach JSON
"""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backend_clients import PipeClient


def stream(transport, address, token, op, fields):
    if transport == "pipe":
        return _pipe(address, token, {"id": 1, "op": op, "stream": True, **fields})
    if transport == "http":
        return _sse(address, token, "POST", "/v1/" + op, json.dumps(fields).encode())
    return _grpc_stream(address, token, op, fields)


def attach(transport, address, token, call, after=0):
    if transport == "pipe":
        return _pipe(address, token, {"id": 1, "op": "attach", "call": call, "after": after})
    if transport == "http":
        return _sse(address, token, "GET", "/v1/calls/%s/events?after=%d" % (call, after), b"")
    return _grpc_attach(address, token, call, after)


def _pipe(address, token, request):
    c = PipeClient(address, token)
    c.strip_live = False
    try:
        c.send_frame(request)
        while True:
            frame = c.recv_frame()
            if frame is None:
                raise ConnectionError("the server closed the stream")
            assert frame.pop("id") == request["id"], frame
            if "event" in frame:
                yield frame
            else:
                yield {"event": "end", "status": 200 if "error" not in frame else 0, "body": frame}
                return
    finally:
        c.close()


def sse_events(sock, buf=b""):
    """Parse server-sent events from `sock` (after the head): yields (event, id, data dict)."""
    while True:
        while b"\n\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
        block, buf = buf.split(b"\n\n", 1)
        fields = {}
        for line in block.split(b"\n"):
            name, _, value = line.partition(b": ")
            fields[name.decode()] = value
        yield fields["event"].decode(), int(fields.get("id", b"0")), json.loads(fields["data"])


def open_sse(address, token, method, path, body, headers=()):
    """Send the request; return (status, head bytes, socket, the body bytes read so far)."""
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = [
        "%s %s HTTP/1.1" % (method, path),
        "Host: %s" % address,
        "Authorization: Bearer %s" % token,
        "Accept: text/event-stream",
        "Content-Type: application/json",
        "Content-Length: %d" % len(body),
        *headers,
    ]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, sock, rest


def _sse(address, token, method, path, body):
    status, head, sock, rest = open_sse(address, token, method, path, body)
    try:
        if status != 200 or b"text/event-stream" not in head:
            length = int(
                next(
                    v
                    for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                )
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            yield {"event": "end", "status": status, "body": json.loads(rest[:length])}
            return
        for event, _eid, data in sse_events(sock, rest):
            if event == "result":
                yield {"event": "end", "status": 200, "body": data}
                return
            yield data
        raise ConnectionError("the server closed the stream")
    finally:
        sock.close()


def _grpc_stub(address, token):
    import grpc

    from beep_backend import backend_pb2 as pb
    from beep_backend import backend_pb2_grpc as pb_grpc

    channel = grpc.insecure_channel(address)
    return channel, pb, pb_grpc.BackendStub(channel), [("authorization", "Bearer " + token)]


def _grpc_events(channel, replies):
    try:
        for ev in replies:
            kind = ev.WhichOneof("kind")
            if kind == "output":
                yield {
                    "event": "output",
                    "call": ev.call,
                    "seq": ev.seq,
                    "stream": ev.output.stream,
                    "data": ev.output.data,
                }
            elif kind == "dropped":
                d = ev.dropped
                yield {
                    "event": "dropped",
                    "call": ev.call,
                    "seq_from": d.seq_from,
                    "seq_to": d.seq_to,
                    "bytes": d.bytes,
                }
            else:
                r = ev.result
                body = {"call": ev.call, "seq": ev.seq, "stdout": r.stdout, "stderr": r.stderr}
                if r.HasField("error"):
                    body["error"] = {
                        "type": r.error.type,
                        "message": r.error.message,
                        "traceback": r.error.traceback,
                    }
                else:
                    body["value"] = json.loads(r.value_json)
                yield {"event": "end", "status": 200, "body": body}
                return
    except Exception as exc:  # grpc.RpcError: the status as an end
        code = getattr(exc, "code", None)
        if code is None:
            raise
        yield {
            "event": "end",
            "status": code().name,
            "body": {"error": {"type": code().name, "message": exc.details()}},
        }
    finally:
        channel.close()


def _grpc_stream(address, token, op, fields):
    channel, pb, stub, md = _grpc_stub(address, token)
    if op == "exec":
        req = pb.ExecRequest(
            session=fields.get("session", ""), code=fields["code"], call=fields.get("call", "")
        )
        if "timeout" in fields:
            req.timeout = fields["timeout"]
        replies = stub.ExecStream(req, metadata=md, timeout=60)
    else:
        req = pb.EvalRequest(
            session=fields.get("session", ""), expr=fields["expr"], call=fields.get("call", "")
        )
        replies = stub.EvalStream(req, metadata=md, timeout=60)
    return _grpc_events(channel, replies)


def _grpc_attach(address, token, call, after):
    channel, pb, stub, md = _grpc_stub(address, token)
    replies = stub.Attach(pb.AttachRequest(call=call, after=after), metadata=md, timeout=60)
    return _grpc_events(channel, replies)


def main():
    transport, address, token, mode, args = sys.argv[1:6]
    args = json.loads(args)
    if mode == "stream":
        events = stream(transport, address, token, args["op"], args["fields"])
    else:
        events = attach(transport, address, token, args["call"], args.get("after", 0))
    for event in events:
        event["t"] = time.time()
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
