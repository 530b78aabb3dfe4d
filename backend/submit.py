"""``prunelab submit``: send a spec to a prunelab server over HTTP and optionally follow it live."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from backend.spec import ExperimentSpec

FINISHED = {"succeeded", "failed", "cancelled"}


class SubmitError(Exception):
    """The server refused the submission or could not be reached; the message says why."""


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event."""

    event: str
    data: Any
    id: str | None = None


def parse_events(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """Server-sent events from a text stream's lines (``event:``, ``data:``, ``id:``, blank = end)."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload: Any = json.loads(text)
                except json.JSONDecodeError:
                    payload = text
                yield ServerEvent(event, payload, event_id)
            event, event_id = "message", None
            data = []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value


def _explain(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        lines = []
        for error in detail:
            loc = ".".join(str(p) for p in error.get("loc", []) if p != "body")
            lines.append(f"  {loc}: {error.get('msg', error)}")
        return f"HTTP {response.status_code}:\n" + "\n".join(lines)
    return f"HTTP {response.status_code}: {detail}"


def submit(
    server: str,
    spec: ExperimentSpec,
    *,
    owner: str = "anonymous",
    tags: list[str] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """POST the spec; returns the server's answer (``id``, ``status``, ``url``).

    Raises:
        SubmitError: the server is unreachable or refused the spec (the message names the fields).
    """
    body = {"spec": spec.model_dump(mode="json"), "owner": owner, "tags": tags or [], "notes": notes}
    try:
        response = httpx.post(f"{server.rstrip('/')}/api/experiments", json=body, timeout=30)
    except httpx.HTTPError as exc:
        raise SubmitError(f"cannot reach {server}: {exc}") from None
    if response.status_code != 202:
        raise SubmitError(_explain(response))
    answer: dict[str, Any] = response.json()
    return answer


def _describe(event: ServerEvent) -> str | None:
    data = event.data if isinstance(event.data, dict) else {}
    if event.event == "epoch":
        val = data.get("val_metric")
        val_text = f" val {val:.4g}" if isinstance(val, int | float) else ""
        return (
            f"cycle {data.get('cycle')} epoch {int(data.get('epoch', 0)) + 1}: "
            f"loss {data.get('loss', float('nan')):.4g}{val_text}"
        )
    if event.event == "cycle":
        widths = data.get("widths") or {}
        after = data.get("widths_after") or {}
        changed = [f"{name} {w}→{after[name]}" for name, w in widths.items() if after.get(name, w) != w]
        shape = ", ".join(changed) if changed else "no units removed"
        return f"cycle {data.get('index')} done: {shape}; val {data.get('val_metric')}"
    if event.event == "status":
        error = f" ({data.get('error')})" if data.get("error") else ""
        return f"status {data.get('status')}{error}"
    return None


def follow(server: str, experiment_id: int, out: TextIO = sys.stdout) -> str:
    """Print the experiment's progress until it finishes; returns the final status.

    Raises:
        SubmitError: the server is unreachable or the stream broke before the experiment finished.
    """
    url = f"{server.rstrip('/')}/api/experiments/{experiment_id}/events"
    status = "unknown"
    last_id: str | None = None
    for _attempt in range(5):
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=120)) as response:
                if response.status_code != 200:
                    response.read()
                    raise SubmitError(_explain(response))
                for event in parse_events(response.iter_lines()):
                    last_id = event.id or last_id
                    if event.event == "status" and isinstance(event.data, dict):
                        new_status = str(event.data.get("status", status))
                        if new_status == status:
                            continue  # a progress update, not a change of state
                        status = new_status
                    line = _describe(event)
                    if line:
                        print(line, file=out, flush=True)
                    if status in FINISHED:
                        return status
        except httpx.HTTPError as exc:
            print(f"(stream interrupted: {exc}; reconnecting)", file=out, flush=True)
    raise SubmitError(f"lost the event stream of experiment {experiment_id}; last status {status}")
