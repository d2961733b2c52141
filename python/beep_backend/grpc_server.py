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
        return body

    def _value_reply(self, req, context):
        body = self._run(req, context)
        if "error" in body:
            return pb.ValueReply(error=_error(body))
        return pb.ValueReply(value_json=json.dumps(body["value"], separators=(",", ":")))

    def _guard(self, build, request, context):
        try:
            return build(request)
        except _BadField as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def Exec(self, request, context):
        req = {"op": "exec", "session": request.session, "code": request.code}
        if request.HasField("timeout"):
            req["timeout"] = request.timeout
        body = self._run(req, context)
        reply = pb.ExecReply(stdout=body.get("stdout", ""), stderr=body.get("stderr", ""))
        if "error" in body:
            reply.error.CopyFrom(_error(body))
        else:
            reply.value_json = json.dumps(body["value"], separators=(",", ":"))
        return reply

    def Eval(self, request, context):
        expr = self._guard(lambda r: _need(r.expr, "expr"), request, context)
        return self._value_reply({"op": "eval", "session": request.session, "expr": expr}, context)

    def Import(self, request, context):
        module = self._guard(lambda r: _need(r.module, "module"), request, context)
        return self._value_reply({"op": "import", "session": request.session, "module": module}, context)

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

        return self._value_reply(self._guard(build, request, context), context)

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

        return self._value_reply(self._guard(build, request, context), context)

    def GetAttr(self, request, context):
        def build(r):
            return {
                "op": "getattr",
                "session": r.session,
                "handle": _need(r.handle, "handle"),
                "name": _need(r.name, "name"),
            }

        return self._value_reply(self._guard(build, request, context), context)

    def SetAttr(self, request, context):
        def build(r):
            return {
                "op": "setattr",
                "session": r.session,
                "handle": _need(r.handle, "handle"),
                "name": _need(r.name, "name"),
                "value": _value(_need(r.value_json, "value_json"), "value_json", None),
            }

        return self._value_reply(self._guard(build, request, context), context)

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
        return pb.InterruptReply(interrupted=self._run({"op": "interrupt"}, context)["value"])

    def Shutdown(self, request, context):
        return pb.ShutdownReply(accepted=self._run({"op": "shutdown"}, context)["value"])


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
