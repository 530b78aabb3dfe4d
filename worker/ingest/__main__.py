"""The ingest subprocess: ``python -m worker.ingest KIND --limits JSON [--out PATH] FILE…``.

``KIND`` is ``keras``, ``npz`` or ``idx`` (IDX files written to ``--out`` as an .npz, which is then
inspected). The process first lowers its own address-space and CPU-time limits (``--memory-mb``,
``--cpu-seconds``), then prints one JSON line: ``{"ok": true, "summary": …}`` or
``{"ok": false, "problem": …, "field": …}``. Anything else (killed, out of memory) is the caller's to report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

from worker.ingest.errors import Refused
from worker.ingest.limits import IngestLimits


def apply_process_limits(memory_mb: int, cpu_seconds: int) -> None:
    """Bound this process: address space (``RLIMIT_AS``) and CPU time (``RLIMIT_CPU``); 0 leaves one as is."""
    if memory_mb > 0:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def inspect(
    kind: str, files: list[Path], names: list[str], out: Path | None, limits: IngestLimits
) -> dict[str, Any]:
    """The summary of an uploaded file (or IDX set) of ``kind``.

    Raises:
        Refused: the file is refused.
    """
    if kind == "keras":
        from worker.ingest.keras_file import inspect_keras

        return inspect_keras(files[0], limits)
    from worker.ingest.arrays import idx_to_npz, inspect_npz

    if kind == "idx":
        if out is None:
            raise Refused("internal: --out is needed for IDX files")
        idx_to_npz(files, names, out, limits)
        return inspect_npz(out, limits)
    return inspect_npz(files[0], limits)


def main(argv: list[str] | None = None) -> int:
    """Run one inspection and print its JSON line; the exit status is 0 whether accepted or refused."""
    parser = argparse.ArgumentParser(prog="python -m worker.ingest")
    parser.add_argument("kind", choices=("keras", "npz", "idx"))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--names", default="", help="the files' names as uploaded, comma-separated")
    parser.add_argument("--limits", default="{}")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--cpu-seconds", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("KERAS_HOME", str(Path(args.files[0]).parent))
    apply_process_limits(args.memory_mb, args.cpu_seconds)
    limits = IngestLimits.from_dict(json.loads(args.limits))
    names = args.names.split(",") if args.names else [path.name for path in args.files]
    try:
        summary = inspect(args.kind, args.files, names, args.out, limits)
        answer: dict[str, Any] = {"ok": True, "summary": summary}
    except Refused as refused:
        answer = {"ok": False, "problem": refused.problem, "field": refused.field}
    except MemoryError:
        answer = {
            "ok": False,
            "problem": "reading the file needs more memory than uploads may use",
            "field": "file",
        }
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
