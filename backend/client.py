"""The HTTP client every ``prunelab`` verb that talks to a server uses (``submit``, ``list``, ``show``,
``cancel``, ``rerun``, ``delete``, ``export``, ``push``).

Where the server is: ``--server URL``, else ``$PRUNELAB_SERVER``, else ``http://$PRUNELAB_HOST:$PRUNELAB_PORT``
(default ``http://127.0.0.1:8000``, the address ``prunelab serve`` binds). With a token (``--token`` or
``$PRUNELAB_TOKEN``) every request carries ``Authorization: Bearer <token>``. Every POST and DELETE sends a
JSON body (``{}`` when there is nothing to say): the server refuses state changes without a JSON content
type.

Every failure becomes one :class:`ClientError` with a one-line message and the process exit code:
:data:`EXIT_USAGE` (2) when what the user gave was refused (422, 413, 400), :data:`EXIT_REFUSED` (1) when the
server is unreachable or refused the request for another reason (401, 403, 404, 409, 429, 5xx).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

#: Exit code when the server refused the request or could not be reached.
EXIT_REFUSED = 1
#: Exit code when the input (command line, file, field values) was refused.
EXIT_USAGE = 2
#: Seconds a request may take (an event stream waits longer between events).
TIMEOUT_SECONDS = 30.0
#: Hosts a server binds to that a client cannot connect to as written; what to connect to instead.
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
#: Longest server message quoted in an error.
MAX_DETAIL_CHARS = 300


class ClientError(Exception):
    """A request that did not succeed; ``str()`` is the one-line reason, ``exit_code`` the process's.

    Args:
        message: what went wrong, for the person at the terminal.
        exit_code: :data:`EXIT_USAGE` or :data:`EXIT_REFUSED`.
    """

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_code = exit_code


def server_url(server: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The server's base URL, without a trailing slash.

    Args:
        server: ``--server``, when given (wins).
        environ: where ``PRUNELAB_SERVER``, ``PRUNELAB_HOST`` and ``PRUNELAB_PORT`` are read. Default
            ``os.environ``.

    Returns:
        E.g. ``http://127.0.0.1:8000``; a wildcard host (``0.0.0.0``) is reached through loopback.
    """
    env = os.environ if environ is None else environ
    chosen = server or env.get("PRUNELAB_SERVER")
    if chosen:
        chosen = chosen.strip()
        return (chosen if "://" in chosen else f"http://{chosen}").rstrip("/")
    host = env.get("PRUNELAB_HOST", "127.0.0.1").strip()
    host = WILDCARD_HOSTS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = env.get("PRUNELAB_PORT", "8000").strip() or "8000"
    return f"http://{host}:{port}"


def _detail(response: httpx.Response) -> str:
    """The server's reason, on one line: ``detail`` of an error body, or each invalid field."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:MAX_DETAIL_CHARS] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for issue in detail:
            if not isinstance(issue, dict):
                parts.append(str(issue))
                continue
            field = issue.get("field") or ".".join(str(p) for p in issue.get("loc", []) if p != "body")
            parts.append(f"{field}: {issue.get('msg', '')}" if field else str(issue.get("msg", "")))
        return "; ".join(parts)[: MAX_DETAIL_CHARS * 3]
    return " ".join(str(detail).split())[:MAX_DETAIL_CHARS]


def refusal(response: httpx.Response) -> ClientError:
    """The error a non-2xx answer means, with a one-line message and an exit code.

    Args:
        response: an answer whose status is not 2xx (its body already read).

    Returns:
        The error to raise.
    """
    code, detail = response.status_code, _detail(response)
    if code == 401:
        return ClientError(f"not signed in (HTTP 401): {detail}; give a token with --token or PRUNELAB_TOKEN")
    if code == 403:
        return ClientError(f"not allowed (HTTP 403): {detail}")
    if code == 404:
        return ClientError(f"not found (HTTP 404): {detail}")
    if code == 409:
        return ClientError(f"refused in this state (HTTP 409): {detail}")
    if code == 413:
        return ClientError(f"too large (HTTP 413): {detail}", EXIT_USAGE)
    if code in (400, 422):
        return ClientError(f"invalid input (HTTP {code}): {detail}", EXIT_USAGE)
    if code == 429:
        wait = response.headers.get("Retry-After")
        later = f" in {wait} s" if wait else " later"
        return ClientError(f"too many requests (HTTP 429): {detail}; try again{later}")
    if code >= 500:
        return ClientError(f"server error (HTTP {code}): {detail}")
    return ClientError(f"unexpected answer (HTTP {code}): {detail}")


class PrunelabClient:
    """Requests to one prunelab server.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000`` (see :func:`server_url`).
        token: sent as ``Authorization: Bearer <token>``. Default None: no header.
        transport: an httpx transport (tests pass ``httpx.ASGITransport``). Default None: the network.
        timeout: seconds a request may take. Default 30.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ):
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport, timeout=timeout
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> PrunelabClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def dashboard_url(self, experiment_id: int) -> str:
        """The experiment's page in the dashboard (what a person opens), not its API URL."""
        return f"{self.base_url}/experiments/{experiment_id}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """Send one request; a 2xx answer is returned, anything else raised.

        Args:
            method: ``GET``, ``POST``, ``DELETE``, ...
            path: below the base URL, e.g. ``/api/experiments``.
            params: query parameters (a list value repeats the parameter).
            body: JSON body; POST, PUT, PATCH and DELETE send ``{}`` when None.

        Raises:
            ClientError: the server is unreachable or answered with a non-2xx status.
        """
        if body is None and method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            body = {}
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        if not response.is_success:
            raise refusal(response)
        return response

    def unreachable(self, exc: Exception) -> ClientError:
        """The error for a server that could not be reached (connection refused, timeout, ...)."""
        reason = str(exc) or type(exc).__name__
        return ClientError(
            f"cannot reach the server at {self.base_url} ({reason}); is `prunelab serve` running there? "
            "Choose another with --server URL or PRUNELAB_SERVER"
        )

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and return its JSON body.

        Raises:
            ClientError: as :meth:`request`, or the body is not JSON.
        """
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{path}: the server's answer is not JSON") from None

    def post_json(self, path: str, body: Any = None) -> Any:
        """POST a JSON body (``{}`` when None) and return the answer's JSON (None when it has no body).

        Raises:
            ClientError: as :meth:`request`.
        """
        response = self.request("POST", path, body=body)
        return response.json() if response.content else None

    def post_files(
        self, path: str, files: list[tuple[str, tuple[str, Any]]], data: Mapping[str, str] | None = None
    ) -> Any:
        """POST ``multipart/form-data`` (an upload) and return the answer's JSON.

        Args:
            path: ``/api/models`` or ``/api/datasets``.
            files: (field, (file name, open file or bytes)) pairs, sent in order.
            data: plain form fields (name, notes, project).

        Raises:
            ClientError: as :meth:`request`.
        """
        try:
            response = self._http.post(
                path,
                files=files,
                data=dict(data or {}),
                timeout=httpx.Timeout(TIMEOUT_SECONDS, write=600, read=600),
            )
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        if not response.is_success:
            raise refusal(response)
        return response.json()

    def delete(self, path: str) -> None:
        """DELETE ``path`` (with an empty JSON body).

        Raises:
            ClientError: as :meth:`request`.
        """
        self.request("DELETE", path)

    @contextmanager
    def stream(self, path: str, headers: Mapping[str, str] | None = None) -> Iterator[httpx.Response]:
        """A GET whose body is read as it arrives (server-sent events); 2xx only.

        Raises:
            ClientError: the answer is not 2xx.
            httpx.HTTPError: the connection failed or broke (the caller may reconnect).
        """
        timeout = httpx.Timeout(TIMEOUT_SECONDS, read=120)
        with self._http.stream("GET", path, headers=dict(headers or {}), timeout=timeout) as response:
            if not response.is_success:
                response.read()
                raise refusal(response)
            yield response


def client_from(
    server: str | None, token: str | None, environ: Mapping[str, str] | None = None
) -> PrunelabClient:
    """A client for ``--server`` / ``--token`` as given, falling back to the environment.

    Args:
        server: ``--server``, or None.
        token: ``--token``, or None (then ``$PRUNELAB_TOKEN``).
        environ: the environment. Default ``os.environ``.
    """
    env = os.environ if environ is None else environ
    return PrunelabClient(server_url(server, env), token=token or env.get("PRUNELAB_TOKEN") or None)
