"""schemathesis against a real `beep-host serve`: the OpenAPI document matches the routes.

It finds no server error, no undocumented status code or content type, and no answer
that does not match its schema. The binary is the cargo build's (`target/debug/beep-host`,
built by the Rust tests before these run) or `$BEEP_HOST_BIN`.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def _binary():
    path = Path(os.environ.get("BEEP_HOST_BIN", ROOT / "target" / "debug" / "beep-host"))
    assert path.is_file(), f"{path} is missing: build it with `cargo build` (the Rust tests do)"
    return path


def test_openapi_document_matches_the_server():
    with tempfile.TemporaryDirectory() as home:
        catalog = Path(home) / "catalog.json"
        catalog.write_text(json.dumps({"entries": []}))
        env = dict(
            os.environ, BEEP_HOST_HOME=home, BEEP_PYTHON_CATALOG=str(catalog), BEEP_HOST_INSTALLER="pip"
        )
        server = subprocess.Popen(
            [str(_binary()), "serve", "--no-grpc"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        try:
            ready = json.loads(server.stdout.readline())
            assert ready["event"] == "ready"
            token = json.loads((Path(home) / "state" / "host.json").read_text())["token"]
            url = "http://%s/openapi.json" % ready["http"]
            run = subprocess.run(
                [
                    str(Path(sys.executable).parent / "schemathesis"),
                    "run",
                    url,
                    "-H",
                    "Authorization: Bearer " + token,
                    "--checks",
                    CHECKS,
                    "--max-examples",
                    "25",
                    "--request-timeout",
                    "30",
                    "--seed",
                    "1",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=home,  # schemathesis and hypothesis write caches into the working directory
            )
            assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
            assert "passed" in run.stdout.lower(), run.stdout[-3000:]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
