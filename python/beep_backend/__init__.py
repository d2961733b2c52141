"""beep_backend: the Python side of Beep Python Host backends.

`python -m beep_backend --transport http|pipe|grpc` serves one operation set (exec, eval,
import, create, call, getattr, setattr, release, handles, info, interrupt, shutdown) over
HTTP (`POST /v1/<op>`), a Unix socket with length-prefixed JSON frames, or gRPC
(`backend.proto`). The full contract with the host (command line, environment,
readiness line, request and answer shapes, status codes, security) is in
`python/PROTOCOL.md`.

This module imports nothing: `python -m beep_backend` starts fast, and the gRPC stubs are
imported only for `--transport grpc`.
"""

__version__ = "0.1.0"
