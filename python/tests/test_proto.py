"""The committed gRPC stubs match `backend.proto` (regenerate into a temp dir and compare)."""

import os
import sys

from backend_clients import PYTHON_DIR

sys.path.insert(0, os.path.join(PYTHON_DIR, "tools"))

import gen_proto


def test_stubs_match_proto(tmp_path):
    out = gen_proto.generate(str(tmp_path))
    for name in gen_proto.OUTPUTS:
        with open(os.path.join(out, name), "rb") as f:
            fresh = f.read()
        with open(os.path.join(PYTHON_DIR, "beep_backend", name), "rb") as f:
            committed = f.read()
        assert fresh == committed, "%s is stale: run python/tools/gen_proto.py" % name


def test_stubs_use_package_imports():
    with open(os.path.join(PYTHON_DIR, "beep_backend", "backend_pb2_grpc.py")) as f:
        text = f.read()
    assert "from beep_backend import backend_pb2" in text
    assert "\nimport backend_pb2" not in text


def test_one_rpc_per_operation():
    from beep_backend import backend_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["Backend"]
    assert pb.DESCRIPTOR.package == "beep.backend.v1"
    assert sorted(m.name for m in service.methods) == sorted(
        [
            "Exec",
            "Eval",
            "Import",
            "Create",
            "Call",
            "GetAttr",
            "SetAttr",
            "Release",
            "Handles",
            "Info",
            "Interrupt",
            "Shutdown",
            "ExecStream",
            "EvalStream",
            "Attach",
            "Calls",
            "Lease",
        ]
    )
