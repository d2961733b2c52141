"""Regenerate the committed gRPC stubs from `beep_backend/backend.proto`.

    .venv-test/bin/python python/tools/gen_proto.py

The proto is compiled as `beep_backend/backend.proto` with `python/` as the include root,
so the generated `backend_pb2_grpc.py` imports `from beep_backend import backend_pb2`
(a package import, not the flat `import backend_pb2` protoc writes for a bare file).
"""

import os
import shutil
import sys

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO = "beep_backend/backend.proto"
OUTPUTS = ("backend_pb2.py", "backend_pb2.pyi", "backend_pb2_grpc.py")


def generate(out_root):
    """Write the stubs under `out_root/beep_backend/`; return that directory."""
    from grpc_tools import protoc

    os.makedirs(os.path.join(out_root, "beep_backend"), exist_ok=True)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main(
        [
            "grpc_tools.protoc",
            "-I" + PYTHON_DIR,
            "-I" + include,
            "--python_out=" + out_root,
            "--pyi_out=" + out_root,
            "--grpc_python_out=" + out_root,
            os.path.join(PYTHON_DIR, PROTO),
        ]
    )
    if code != 0:
        raise RuntimeError("protoc failed with exit code %d" % code)
    return os.path.join(out_root, "beep_backend")


def main():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = generate(tmp)
        for name in OUTPUTS:
            shutil.copyfile(os.path.join(out, name), os.path.join(PYTHON_DIR, "beep_backend", name))
    print("regenerated", ", ".join(OUTPUTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
