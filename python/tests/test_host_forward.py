"""Environment routes on a backend's HTTP transport without a host API: clear refusals."""

import http.client
import json

from backend_clients import Backend, backend_env


def _request(backend, method, path, body=None, token=True):
    host, port = backend.address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Host": backend.address}
    if token:
        headers["Authorization"] = "Bearer " + backend.token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return response.status, answer


def test_forwarded_routes_refuse_clearly_without_a_host():
    env = backend_env("t" * 64)
    env.pop("BEEP_HOST_URL", None)
    env.pop("BEEP_HOST_TOKEN", None)
    backend = Backend("http", token="t" * 64, env=env)
    try:
        status, answer = _request(backend, "POST", "/venv/create", {"name": "x"})
        assert status == 503
        assert answer["code"] == "unavailable"
        assert "no host API" in answer["message"]
        status, answer = _request(backend, "GET", "/venv/list")
        assert status == 503
        status, answer = _request(backend, "GET", "/venv/list", token=False)
        assert status == 401
        status, answer = _request(backend, "GET", "/venv/create")
        assert status == 405
        status, answer = _request(backend, "PUT", "/venv/a/b")
        assert status == 404
        # The backend keeps serving its own operations.
        status, answer = _request(backend, "POST", "/v1/eval", {"expr": "1+1"})
        assert (status, answer["value"]) == (200, 2)
    finally:
        backend.stop()


def test_host_module_says_what_is_missing(monkeypatch):
    from beep_backend import host

    monkeypatch.delenv("BEEP_HOST_URL", raising=False)
    monkeypatch.delenv("BEEP_HOST_TOKEN", raising=False)
    try:
        host.venv.list()
    except host.HostUnavailable as exc:
        assert exc.code == "unavailable"
        assert "beep-host serve" in exc.message
    else:
        raise AssertionError("expected HostUnavailable")
    monkeypatch.setenv("BEEP_HOST_URL", "ftp://example")
    monkeypatch.setenv("BEEP_HOST_TOKEN", "x")
    try:
        host.backends.list()
    except host.HostUnavailable as exc:
        assert "not http://HOST:PORT" in exc.message
    else:
        raise AssertionError("expected HostUnavailable")
