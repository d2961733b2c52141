"""The gRPC transport: service `beep.backend.v1.Backend` from `backend.proto`.

Only imported for `--transport grpc` (grpcio and protobuf are slow to import). Each rpc
turns its typed request into the same request dict the other transports build, goes
through the dispatcher, and turns the `(status, body)` answer back into its reply type.
User-code failures travel in the reply's `error` field; only protocol failures are gRPC
statuses (UNAUTHENTICATED for the token, INVALID_ARGUMENT for missing or malformed fields).
"""

import json
import threading
from concurrent import futures

import grpc

from . import backend_pb2 as pb
from . import backend_pb2_grpc as pb_grpc
from .auth import compare_digest


class _TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token):
        self.bearer = b"bearer " + token  # the scheme is case-insensitive (RFC 7235)

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self.refuse = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, details):
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                if isinstance(value, str):
                    value = value.encode("utf-8", "replace")
                value = value[:7].lower() + value[7:]
                if compare_digest(value, self.bearer):
                    return continuation(details)
                break
        return self.refuse


def _value(text, field, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _BadField("`%s` is not valid JSON: %s" % (field, exc)) from None


class _BadField(Exception):
    pass


def _error(body):
    e = body["error"]
    return pb.Error(type=e["type"], message=e["message"], traceback=e.get("traceback") or "")


def _need(value, field):
    if not value:
        raise _BadField("missing field `%s`" % field)
    return value


class Servicer(pb_grpc.BackendServicer):
    def __init__(self, dispatcher):
        self.dispatcher = dispatcher

    def _run(self, req, context):
        """Submit to the dispatcher and wait for `(status, body)`."""
        result = []
        done = threading.Lock()
        done.acquire()

        def reply(status, body):
            result.append((status, body))
            done.release()

        self.dispatcher.submit(req, reply)
        done.acquire()
        status, body = result[0]
        if status in (400, 404):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, body["error"]["message"])
        if status == 409:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, body["error"]["message"])
        return body

    def _value_reply(self, req, context):
        body = self._run(req, context)
        if "error" in body:
            return pb.ValueReply(error=_error(body), call=body.get("call", ""))
        return pb.ValueReply(
            value_json=json.dumps(body["value"], separators=(",", ":")), call=body.get("call", "")
        )

    def _call_id(self, request, req):
        if request.call:
            req["call"] = request.call
        return req

    def _stream(self, req, context, follow):
        """Yield the CallEvents of `follow(emit, alive)` as they come, then the result."""
        events = []
        cond = threading.Condition()
        outcome = []

        def emit(event):
            with cond:
                events.append(event)
                cond.notify()

        def run():
            try:
                result = follow(emit, context.is_active)
            except Exception as exc:  # a bug: end the stream with it
                result = (500, {"error": {"type": "InternalError", "message": repr(exc), "traceback": ""}})
            with cond:
                outcome.append(result)
                cond.notify()

        threading.Thread(target=run, name="grpc-follow", daemon=True).start()
        while True:
            with cond:
                while not events and not outcome:
                    cond.wait()
                batch, events[:] = list(events), []
                done = outcome[0] if outcome and not batch else None
            for event in batch:
                yield _event(event)
            if done is not None:
                status, end = done
                if "call" not in end:  # refused before it ran, or an unknown call
                    if status == 404:
                        context.abort(grpc.StatusCode.NOT_FOUND, end["error"]["message"])
                    if status == 409:
                        context.abort(grpc.StatusCode.ALREADY_EXISTS, end["error"]["message"])
                    if status == 499:
                        return
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, end["error"]["message"])
                yield _result(end)
                return

    def _live(self, req, context):
        dispatcher = self.dispatcher
        waiter = dispatcher.prepare_stream(req)
        dispatcher.submit(req, _ignore)
        return self._stream(req, context, lambda emit, alive: dispatcher.follow(waiter, emit, alive))

    def ExecStream(self, request, context):
        req = {"op": "exec", "session": request.session, "code": request.code}
        if request.HasField("timeout"):
            req["timeout"] = request.timeout
        return self._live(self._call_id(request, req), context)

    def EvalStream(self, request, context):
        expr = self._guard(lambda r: _need(r.expr, "expr"), request, context)
        req = {"op": "eval", "session": request.session, "expr": expr}
        return self._live(self._call_id(request, req), context)

    def Attach(self, request, context):
        req = {"op": "attach", "session": request.session, "call": request.call, "after": request.after}
        dispatcher = self.dispatcher
        return self._stream(req, context, lambda emit, alive: dispatcher.attach(req, emit, alive))

    def Calls(self, request, context):
        body = self._run({"op": "calls", "session": request.session, "all": request.all}, context)
        rows = []
        for row in body["value"]:
            info = pb.CallInfo(
                call=row["call"],
                op=row["op"],
                session=row["session"],
                state=row["state"],
                started=row["started"],
                output_bytes=row["output_bytes"],
            )
            if row["duration"] is not None:
                info.duration = row["duration"]
            rows.append(info)
        return pb.CallsReply(calls=rows)

    def Lease(self, request, context):
        if request.seconds < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "`seconds` must be >= 0")
        return self._value_reply(
            {"op": "lease", "session": request.session, "seconds": request.seconds}, context
        )

    def _guard(self, build, request, context):
        try:
            return build(request)
        except _BadField as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def Exec(self, request, context):
        req = {"op": "exec", "session": request.session, "code": request.code}
        if request.HasField("timeout"):
            req["timeout"] = request.timeout
        body = self._run(self._call_id(request, req), context)
        reply = pb.ExecReply(
            stdout=body.get("stdout", ""), stderr=body.get("stderr", ""), call=body.get("call", "")
        )
        if "error" in body:
            reply.error.CopyFrom(_error(body))
        else:
            reply.value_json = json.dumps(body["value"], separators=(",", ":"))
        return reply

    def Eval(self, request, context):
        expr = self._guard(lambda r: _need(r.expr, "expr"), request, context)
        req = {"op": "eval", "session": request.session, "expr": expr}
        return self._value_reply(self._call_id(request, req), context)

    def Import(self, request, context):
        module = self._guard(lambda r: _need(r.module, "module"), request, context)
        req = {"op": "import", "session": request.session, "module": module}
        return self._value_reply(self._call_id(request, req), context)

    def Create(self, request, context):
        def build(r):
            which = r.WhichOneof("target")
            if which is None:
                raise _BadField("missing field `path` or `handle`")
            target = _need(r.path, "path") if which == "path" else {"$handle": _need(r.handle, "handle")}
            return {
                "op": "create",
                "session": r.session,
                "target": target,
                "args": _value(r.args_json, "args_json", []),
                "kwargs": _value(r.kwargs_json, "kwargs_json", {}),
            }

        return self._value_reply(self._call_id(request, self._guard(build, request, context)), context)

    def Call(self, request, context):
        def build(r):
            return {
                "op": "call",
                "session": r.session,
                "handle": _need(r.handle, "handle"),
                "method": _need(r.method, "method"),
                "args": _value(r.args_json, "args_json", []),
                "kwargs": _value(r.kwargs_json, "kwargs_json", {}),
            }

        return self._value_reply(self._call_id(request, self._guard(build, request, context)), context)

    def GetAttr(self, request, context):
        def build(r):
            return {
                "op": "getattr",
                "session": r.session,
                "handle": _need(r.handle, "handle"),
                "name": _need(r.name, "name"),
            }

        return self._value_reply(self._call_id(request, self._guard(build, request, context)), context)

    def SetAttr(self, request, context):
        def build(r):
            return {
                "op": "setattr",
                "session": r.session,
                "handle": _need(r.handle, "handle"),
                "name": _need(r.name, "name"),
                "value": _value(_need(r.value_json, "value_json"), "value_json", None),
            }

        return self._value_reply(self._call_id(request, self._guard(build, request, context)), context)

    def Release(self, request, context):
        handle = self._guard(lambda r: _need(r.handle, "handle"), request, context)
        return self._value_reply({"op": "release", "session": request.session, "handle": handle}, context)

    def Handles(self, request, context):
        body = self._run({"op": "handles", "session": request.session}, context)
        if "error" in body:
            return pb.HandlesReply(error=_error(body))
        return pb.HandlesReply(handles=[pb.Handle(**h) for h in body["value"]])

    def Info(self, request, context):
        value = self._run({"op": "info"}, context)["value"]
        value["env_name"] = value["env_name"] or ""
        return pb.InfoReply(**value)

    def Interrupt(self, request, context):
        req = {"op": "interrupt"}
        if request.call:
            req["call"] = request.call
        return pb.InterruptReply(interrupted=self._run(req, context)["value"])

    def Shutdown(self, request, context):
        return pb.ShutdownReply(accepted=self._run({"op": "shutdown"}, context)["value"])


def _ignore(status, body):
    pass


def _event(event):
    if event["event"] == "output":
        return pb.CallEvent(
            call=event["call"], seq=event["seq"], output=pb.Output(stream=event["stream"], data=event["data"])
        )
    return pb.CallEvent(
        call=event["call"],
        seq=event["seq_to"],
        dropped=pb.Dropped(seq_from=event["seq_from"], seq_to=event["seq_to"], bytes=event["bytes"]),
    )


def _result(end):
    result = pb.Result(stdout=end.get("stdout", ""), stderr=end.get("stderr", ""))
    if "error" in end:
        result.error.CopyFrom(_error(end))
    else:
        result.value_json = json.dumps(end["value"], separators=(",", ":"))
    return pb.CallEvent(call=end["call"], seq=end["seq"], result=result)


class GrpcServer:
    name = "grpc"

    def __init__(self, dispatcher, token, max_body, port=0):
        self.dispatcher = dispatcher
        self.token = token
        self.max_body = max_body
        self.port = port
        self.server = None

    def bind(self):
        interceptors = [_TokenCheck(self.token)] if self.token is not None else []
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", self.max_body),
                ("grpc.max_send_message_length", -1),
                ("grpc.so_reuseport", 0),
            ],
        )
        pb_grpc.add_BackendServicer_to_server(Servicer(self.dispatcher), server)
        port = server.add_insecure_port("127.0.0.1:%d" % self.port)
        if not port:
            raise OSError("cannot bind 127.0.0.1:%d" % self.port)
        server.start()
        self.server = server
        self.port = port
        return "127.0.0.1:%d" % port

    def close(self):
        # Let in-flight rpcs (the Shutdown reply itself) finish before the process exits.
        self.server.stop(grace=1.0).wait(2.0)
