from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Error(_message.Message):
    __slots__ = ("type", "message", "traceback")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    traceback: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class ExecRequest(_message.Message):
    __slots__ = ("session", "code", "timeout", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    code: str
    timeout: float
    call: str
    def __init__(self, session: _Optional[str] = ..., code: _Optional[str] = ..., timeout: _Optional[float] = ..., call: _Optional[str] = ...) -> None: ...

class ExecReply(_message.Message):
    __slots__ = ("stdout", "stderr", "value_json", "error", "call")
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    stdout: str
    stderr: str
    value_json: str
    error: Error
    call: str
    def __init__(self, stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., value_json: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., call: _Optional[str] = ...) -> None: ...

class EvalRequest(_message.Message):
    __slots__ = ("session", "expr", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXPR_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    expr: str
    call: str
    def __init__(self, session: _Optional[str] = ..., expr: _Optional[str] = ..., call: _Optional[str] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("session", "module", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    module: str
    call: str
    def __init__(self, session: _Optional[str] = ..., module: _Optional[str] = ..., call: _Optional[str] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("session", "path", "handle", "args_json", "kwargs_json", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    ARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    path: str
    handle: str
    args_json: str
    kwargs_json: str
    call: str
    def __init__(self, session: _Optional[str] = ..., path: _Optional[str] = ..., handle: _Optional[str] = ..., args_json: _Optional[str] = ..., kwargs_json: _Optional[str] = ..., call: _Optional[str] = ...) -> None: ...

class CallRequest(_message.Message):
    __slots__ = ("session", "handle", "method", "args_json", "kwargs_json", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    handle: str
    method: str
    args_json: str
    kwargs_json: str
    call: str
    def __init__(self, session: _Optional[str] = ..., handle: _Optional[str] = ..., method: _Optional[str] = ..., args_json: _Optional[str] = ..., kwargs_json: _Optional[str] = ..., call: _Optional[str] = ...) -> None: ...

class GetAttrRequest(_message.Message):
    __slots__ = ("session", "handle", "name", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    handle: str
    name: str
    call: str
    def __init__(self, session: _Optional[str] = ..., handle: _Optional[str] = ..., name: _Optional[str] = ..., call: _Optional[str] = ...) -> None: ...

class SetAttrRequest(_message.Message):
    __slots__ = ("session", "handle", "name", "value_json", "call")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    handle: str
    name: str
    value_json: str
    call: str
    def __init__(self, session: _Optional[str] = ..., handle: _Optional[str] = ..., name: _Optional[str] = ..., value_json: _Optional[str] = ..., call: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("session", "handle")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    session: str
    handle: str
    def __init__(self, session: _Optional[str] = ..., handle: _Optional[str] = ...) -> None: ...

class ValueReply(_message.Message):
    __slots__ = ("value_json", "error", "call")
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    value_json: str
    error: Error
    call: str
    def __init__(self, value_json: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., call: _Optional[str] = ...) -> None: ...

class HandlesRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: str
    def __init__(self, session: _Optional[str] = ...) -> None: ...

class Handle(_message.Message):
    __slots__ = ("id", "type", "repr", "created", "last_used", "age")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REPR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    repr: str
    created: float
    last_used: float
    age: float
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., repr: _Optional[str] = ..., created: _Optional[float] = ..., last_used: _Optional[float] = ..., age: _Optional[float] = ...) -> None: ...

class HandlesReply(_message.Message):
    __slots__ = ("handles", "error")
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    handles: _containers.RepeatedCompositeFieldContainer[Handle]
    error: Error
    def __init__(self, handles: _Optional[_Iterable[_Union[Handle, _Mapping]]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoReply(_message.Message):
    __slots__ = ("python_version", "executable", "prefix", "env_name", "pid", "transport", "started_at", "handles", "busy")
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    python_version: str
    executable: str
    prefix: str
    env_name: str
    pid: int
    transport: str
    started_at: float
    handles: int
    busy: bool
    def __init__(self, python_version: _Optional[str] = ..., executable: _Optional[str] = ..., prefix: _Optional[str] = ..., env_name: _Optional[str] = ..., pid: _Optional[int] = ..., transport: _Optional[str] = ..., started_at: _Optional[float] = ..., handles: _Optional[int] = ..., busy: bool = ...) -> None: ...

class InterruptRequest(_message.Message):
    __slots__ = ("call",)
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: str
    def __init__(self, call: _Optional[str] = ...) -> None: ...

class InterruptReply(_message.Message):
    __slots__ = ("interrupted",)
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    interrupted: bool
    def __init__(self, interrupted: bool = ...) -> None: ...

class ShutdownRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShutdownReply(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    def __init__(self, accepted: bool = ...) -> None: ...

class CallEvent(_message.Message):
    __slots__ = ("call", "seq", "output", "dropped", "result")
    CALL_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    call: str
    seq: int
    output: Output
    dropped: Dropped
    result: Result
    def __init__(self, call: _Optional[str] = ..., seq: _Optional[int] = ..., output: _Optional[_Union[Output, _Mapping]] = ..., dropped: _Optional[_Union[Dropped, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("stream", "data")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream: str
    data: str
    def __init__(self, stream: _Optional[str] = ..., data: _Optional[str] = ...) -> None: ...

class Dropped(_message.Message):
    __slots__ = ("seq_from", "seq_to", "bytes")
    SEQ_FROM_FIELD_NUMBER: _ClassVar[int]
    SEQ_TO_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    seq_from: int
    seq_to: int
    bytes: int
    def __init__(self, seq_from: _Optional[int] = ..., seq_to: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("value_json", "error", "stdout", "stderr")
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    value_json: str
    error: Error
    stdout: str
    stderr: str
    def __init__(self, value_json: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ("session", "call", "after")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    session: str
    call: str
    after: int
    def __init__(self, session: _Optional[str] = ..., call: _Optional[str] = ..., after: _Optional[int] = ...) -> None: ...

class CallsRequest(_message.Message):
    __slots__ = ("session", "all")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    session: str
    all: bool
    def __init__(self, session: _Optional[str] = ..., all: bool = ...) -> None: ...

class CallInfo(_message.Message):
    __slots__ = ("call", "op", "session", "state", "started", "duration", "output_bytes")
    CALL_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    call: str
    op: str
    session: str
    state: str
    started: float
    duration: float
    output_bytes: int
    def __init__(self, call: _Optional[str] = ..., op: _Optional[str] = ..., session: _Optional[str] = ..., state: _Optional[str] = ..., started: _Optional[float] = ..., duration: _Optional[float] = ..., output_bytes: _Optional[int] = ...) -> None: ...

class CallsReply(_message.Message):
    __slots__ = ("calls",)
    CALLS_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[CallInfo]
    def __init__(self, calls: _Optional[_Iterable[_Union[CallInfo, _Mapping]]] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ("session", "seconds")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    session: str
    seconds: float
    def __init__(self, session: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...
