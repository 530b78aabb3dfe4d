"""``prunelab submit``: send a spec to a prunelab server over HTTP and optionally follow it live.

The requests go through :class:`backend.client.PrunelabClient` (server address, token, error messages).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from backend.client import ClientError, PrunelabClient
from prunespec.spec import ExperimentSpec

FINISHED = {"succeeded", "failed", "cancelled"}


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


def submit(
    client: PrunelabClient,
    spec: ExperimentSpec,
    *,
    owner: str = "anonymous",
    tags: list[str] | None = None,
    notes: str = "",
) -> int:
    """POST the spec; returns the new experiment's id.

    Raises:
        ClientError: the server is unreachable or refused the spec (the message names the fields).
    """
    body = {"spec": spec.model_dump(mode="json"), "owner": owner, "tags": tags or [], "notes": notes}
    answer = client.post_json("/api/experiments", body)
    return int(answer["id"])


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
        val = data.get("val_metric")
        line = (
            f"cycle {data.get('index')} done: {shape}; val {val:.4g}"
            if isinstance(val, int | float)
            else (f"cycle {data.get('index')} done: {shape}; val n/a")
        )
        index, source = data.get("index"), data.get("pruned_from")
        backed_off = isinstance(index, int) and isinstance(source, int) and source != index - 1
        if data.get("accepted") is False:
            kept = f"cycle {source}'s" if backed_off else "the previous cycle's"
            line += f" — rejected (beyond the tolerance; {kept} model is kept)"
        elif backed_off:
            line += f" — backed off: pruned from cycle {source}'s model (the last kept) with a smaller step"
        return line
    if event.event == "status":
        error = f" ({data.get('error')})" if data.get("error") else ""
        return f"status {data.get('status')}{error}"
    return None


def follow(client: PrunelabClient, experiment_id: int, out: TextIO = sys.stdout) -> str:
    """Print the experiment's progress until it finishes; returns the final status.

    Raises:
        ClientError: the server is unreachable, refused the stream, or the stream broke five times
            before the experiment finished.
    """
    path = f"/api/experiments/{experiment_id}/events"
    status = "unknown"
    last_id: str | None = None
    for _attempt in range(5):
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with client.stream(path, headers) as response:
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
            if last_id is None and status == "unknown":
                raise client.unreachable(exc) from None
            print(f"(stream interrupted: {exc}; reconnecting)", file=out, flush=True)
    raise ClientError(f"lost the event stream of experiment {experiment_id}; last status {status}")
