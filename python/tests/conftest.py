import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backend_clients import TRANSPORTS, Backend


@pytest.fixture(scope="session")
def backends():
    """One shared backend per transport, started lazily."""
    started = {}

    def get(transport):
        b = started.get(transport)
        if b is None or not b.alive():
            b = started[transport] = Backend(transport)
            assert b.event["event"] == "ready", (b.event, b.stderr_lines)
        return b

    yield get
    for b in started.values():
        b.stop()


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture
def backend(backends, transport):
    return backends(transport)


@pytest.fixture
def client(backend):
    c = backend.client()
    yield c
    c.close()
