"""Inspecting an uploaded file in the ingest subprocess (``python -m worker.ingest``), never in this process.

The web service imports neither TensorFlow nor the worker: it starts a short-lived Python process with a
memory, CPU-time and wall-time limit, hands it the file's temporary path and the limits as JSON, and reads
one JSON line back. A process that dies or runs out of time refuses the upload with a message saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.service.errors import InvalidInput
from backend.settings import Settings

#: The module run as the subprocess.
INGEST_MODULE = "worker.ingest"


@dataclass(frozen=True)
class Inspected:
    """An accepted upload: the summary the subprocess read."""

    summary: dict[str, Any]


def ingest_limits(settings: Settings, kind: str) -> dict[str, Any]:
    """The bounds the subprocess checks (``worker.ingest.limits.IngestLimits``'s fields) for one kind."""
    body_limit = settings.max_model_upload_bytes if kind == "keras" else settings.max_data_upload_bytes
    return {
        "max_entries": settings.upload_max_entries,
        "max_uncompressed_bytes": 2 * body_limit,
        "max_ratio": settings.upload_max_ratio,
        "max_array_elements": 2 * body_limit,
        "max_parameters": settings.max_parameters,
    }


def _environment() -> dict[str, str]:
    """The subprocess's environment: this one, quiet TensorFlow, no GPU, and this project on the path."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    return env


def inspect_upload(
    settings: Settings,
    kind: str,
    files: list[Path],
    names: list[str],
    *,
    field: str = "file",
    out: Path | None = None,
) -> Inspected:
    """Run the ingest subprocess on uploaded files.

    Args:
        settings: the limits (``upload_memory_mb``, ``upload_cpu_seconds``, ``upload_wall_seconds`` and
            the size bounds).
        kind: ``keras``, ``npz`` or ``idx``.
        files: the temporary files holding the upload.
        names: the files' names as uploaded (IDX files are told apart by them).
        field: the form field named in a refusal. Default ``file``.
        out: where IDX files are written as an .npz.

    Returns:
        The summary.

    Raises:
        InvalidInput: the file is refused (422 naming the problem), or the inspection ran out of memory
            or time.
    """
    command = [
        sys.executable,
        "-m",
        INGEST_MODULE,
        kind,
        *[str(path) for path in files],
        "--names",
        ",".join(name.replace(",", "_") for name in names),
        "--limits",
        json.dumps(ingest_limits(settings, kind)),
        "--memory-mb",
        str(settings.upload_memory_mb),
        "--cpu-seconds",
        str(settings.upload_cpu_seconds),
    ]
    if out is not None:
        command += ["--out", str(out)]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=settings.upload_wall_seconds,
            env=_environment(),
            cwd=str(files[0].parent),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(
            ("body", field), f"reading the file took over {settings.upload_wall_seconds:.0f} s; it is refused"
        ) from None
    answer = _last_json_line(done.stdout)
    if answer is None:
        raise InvalidInput(
            ("body", field),
            "the file could not be read within the memory and time uploads may use "
            f"(the reader ended with status {done.returncode})",
        )
    if not answer.get("ok"):
        raise InvalidInput(("body", field), str(answer.get("problem", "the file is refused")))
    return Inspected(summary=dict(answer["summary"]))


def _last_json_line(stdout: bytes) -> dict[str, Any] | None:
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
