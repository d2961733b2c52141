"""Reach the host that started this backend: manage environments, runtimes and backends.

A backend started by a host that serves its API (`beep-host serve`, or the app with the
host API on) receives `BEEP_HOST_URL` and `BEEP_HOST_TOKEN`; this module wraps that HTTP
API with the standard library only:

    from beep_backend import host
    host.venv.create("work", packages=["six"])   # {"path": ..., "success": True}
    host.venv.list()                             # [{"name": "work", ...}, ...]
    host.venv.delete("work")
    host.backends.list()

Errors raise `HostError` with the host's `code` (`invalid`, `not_found`, `conflict`,
`failed`, `unauthorized`, ...) and message; `HostUnavailable` when no host API was given.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse

__all__ = ["Host", "HostError", "HostUnavailable", "backends", "request", "runtimes", "venv"]

#: Seconds to wait for an answer; creating an environment with packages can take a while.
TIMEOUT = 600.0


class HostError(Exception):
    """The host answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__("%s (%s, HTTP %d)" % (message, code, status))
        self.status = status
        self.code = code
        self.message = message


class HostUnavailable(HostError):
    """No host API is reachable from this process."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "unavailable", message)


def _endpoint() -> tuple[str, int, str]:
    url = os.environ.get("BEEP_HOST_URL", "")
    token = os.environ.get("BEEP_HOST_TOKEN", "")
    if not url or not token:
        raise HostUnavailable(
            "no host API: this backend was not started by a host that serves one "
            "(run `beep-host serve`, or turn the host API on in the app)"
        )
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise HostUnavailable("BEEP_HOST_URL `%s` is not http://HOST:PORT" % url)
    return parts.hostname, parts.port, token


def request(method: str, path: str, body: object = None) -> tuple[int, object]:
    """Send one request to the host API; `(status, decoded JSON)` whatever the status."""
    hostname, port, token = _endpoint()
    headers = {"Authorization": "Bearer " + token, "Host": "%s:%d" % (hostname, port)}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(hostname, port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    except OSError as exc:
        raise HostUnavailable("the host API at %s:%d did not answer: %s" % (hostname, port, exc)) from None
    finally:
        conn.close()
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return status, decoded


def _call(method: str, path: str, body: object = None) -> object:
    status, answer = request(method, path, body)
    if status >= 400:
        code = answer.get("code", "error") if isinstance(answer, dict) else "error"
        message = answer.get("message", str(answer)) if isinstance(answer, dict) else str(answer)
        raise HostError(status, code, message)
    return answer


def _name(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class _Venv:
    """Environments: create, list, get, delete, install."""

    def create(
        self,
        name: str,
        runtime: str | None = None,
        provider_name: str | None = None,
        model_id: str | None = None,
        packages: list[str] | None = None,
    ) -> dict:
        body: dict = {"name": name}
        if runtime:
            body["runtime"] = runtime
        if provider_name:
            body["providerName"] = provider_name
        if model_id:
            body["modelId"] = model_id
        if packages:
            body["packages"] = list(packages)
        return _call("POST", "/venv/create", body)  # type: ignore[return-value]

    def list(self) -> list:
        return _call("GET", "/venv/list")  # type: ignore[return-value]

    def get(self, name: str) -> dict:
        return _call("GET", "/venv/" + _name(name))  # type: ignore[return-value]

    def delete(self, name: str, force: bool = False) -> dict:
        suffix = "?force=true" if force else ""
        return _call("DELETE", "/venv/" + _name(name) + suffix)  # type: ignore[return-value]

    def install(self, name: str, *requirements: str) -> dict:
        return _call("POST", "/venv/%s/packages" % _name(name), {"requirements": list(requirements)})  # type: ignore[return-value]


class _Backends:
    """Backends: list, start, stop."""

    def list(self) -> list:
        return _call("GET", "/backends")  # type: ignore[return-value]

    def start(self, transport: str, env: str | None = None, restart: str | None = None) -> dict:
        body: dict = {"transport": transport}
        if env:
            body["env"] = env
        if restart:
            body["restart"] = restart
        return _call("POST", "/backends", body)  # type: ignore[return-value]

    def stop(self, backend_id: str) -> dict:
        return _call("DELETE", "/backends/" + _name(backend_id))  # type: ignore[return-value]


class _Runtimes:
    """Runtimes: list."""

    def list(self) -> list:
        return _call("GET", "/runtimes")  # type: ignore[return-value]


class Host:
    """The host's services, as attributes."""

    venv = _Venv()
    backends = _Backends()
    runtimes = _Runtimes()


venv = Host.venv
backends = Host.backends
runtimes = Host.runtimes
