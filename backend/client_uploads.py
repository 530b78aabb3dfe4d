"""Uploads from the command line: ``prunelab models|datasets list|upload`` and ``submit --model/--data``.

``prunelab submit spec.yaml --model my.keras --data my.npz`` uploads the files (the server returns the
existing id when it has the same bytes), puts their ids into the spec (``model: {uploaded: ID, weights:
…}``, ``dataset: {name: npz, id: ID}``) and submits it; the server reads the uploaded model's layers.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from backend.client import ClientError, PrunelabClient
from backend.client_format import aligned

ROUTES = {"model": "/api/models", "dataset": "/api/datasets"}
LISTS = {"model": "/api/models", "dataset": "/api/datasets/uploaded"}


def upload(
    client: PrunelabClient,
    kind: str,
    paths: list[Path],
    *,
    name: str = "",
    notes: str = "",
    project: str = "",
) -> dict[str, Any]:
    """Upload a model (one .keras) or a data set (one .npz, or 2 or 4 IDX files); returns the server's answer.

    Raises:
        ClientError: a file cannot be read, or the server refused it (its message says why).
    """
    data = {key: value for key, value in (("name", name), ("notes", notes), ("project", project)) if value}
    with ExitStack() as stack:
        try:
            files = [("file", (path.name, stack.enter_context(path.open("rb")))) for path in paths]
        except OSError as exc:
            raise ClientError(f"cannot read {exc.filename}: {exc.strerror}", exit_code=2) from None
        answer: dict[str, Any] = client.post_files(ROUTES[kind], files, data)
    return answer


def with_uploads(
    spec: dict[str, Any], model_id: int | None, data_id: int | None, weights: str
) -> dict[str, Any]:
    """The spec with ``model`` and/or ``dataset`` pointing at uploads (a data set keeps its other fields:
    samples and target)."""
    spec = dict(spec)
    if model_id is not None:
        spec["model"] = {"uploaded": model_id, "weights": weights}
    if data_id is not None:
        given = spec.get("dataset")
        dataset: dict[str, Any] = given if isinstance(given, dict) else {}
        kept = {k: v for k, v in dataset.items() if k in ("train_samples", "test_samples", "target")}
        spec["dataset"] = {"name": "npz", "id": data_id, **kept}
    return spec


def summary_line(item: dict[str, Any]) -> str:
    """One upload in a sentence: id, name, and what it holds."""
    summary = item.get("summary", {})
    if item.get("kind") == "model":
        what = (
            f"input {tuple(summary.get('input_shape', []))}, {summary.get('parameters', 0):,} parameters, "
            f"prunable: {', '.join(summary.get('prunable', [])) or 'none'}"
        )
    else:
        classes = summary.get("classes")
        what = (
            f"{summary.get('train_examples', 0):,} train / {summary.get('test_examples', 0):,} test, input "
            f"{tuple(summary.get('input_shape', []))}, " + (f"{classes} classes" if classes else "values")
        )
    again = " (already stored)" if item.get("existing") else ""
    return f"{item['kind']} {item['id']}: {item['name']}{again}: {what}"


def list_verb(kind: str, client: PrunelabClient, out: IO[str]) -> int:
    """Print the uploads of a kind the caller sees."""
    items = client.get_json(LISTS[kind])
    rows = [
        [str(i["id"]), i["name"], i["owner"], f"{i['size_bytes']:,}", i["sha256"][:12], i["created_at"][:19]]
        for i in items
    ]
    header = ["id", "name", "owner", "bytes", "sha256", "uploaded"]
    print("\n".join(aligned([header, *rows], {1, 2})) if rows else f"no {kind}s", file=out)
    return 0


def run_upload_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab models|datasets list|upload``."""
    if args.action == "list":
        return list_verb(args.kind, client, sys.stdout)
    if not args.files:
        raise ClientError("name the file(s) to upload", exit_code=2)
    item = upload(client, args.kind, args.files, name=args.name, notes=args.notes, project=args.project)
    print(summary_line(item))
    return 0


def add_upload_commands(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``models`` and ``datasets`` (each ``list`` or ``upload FILE…``) to the ``prunelab`` subparsers."""
    from backend.client_cli import run_verb

    for command, kind, what in (
        ("models", "model", "a .keras file"),
        ("datasets", "dataset", "an .npz or IDX files"),
    ):
        parser = commands.add_parser(command, help=f"list or upload {kind}s ({what})", parents=[parent])
        parser.add_argument("action", choices=["list", "upload"])
        parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
        parser.add_argument("--name", default="", help="a name for the upload (default: the file's)")
        parser.add_argument("--notes", default="", help="free text kept beside it")
        parser.add_argument("--project", default="", help="the project it goes to (default yours)")
        parser.set_defaults(kind=kind, handler=lambda args: run_verb(run_upload_verb, args))


def names_uploads(spec: Any) -> bool:
    """Whether a raw spec names an upload by id (then only the server can validate it)."""
    if not isinstance(spec, dict):
        return False
    model, dataset = spec.get("model"), spec.get("dataset")
    return (isinstance(model, dict) and "uploaded" in model) or (
        isinstance(dataset, dict) and "id" in dataset
    )


def submit_with_uploads(client: PrunelabClient, args: argparse.Namespace) -> int:
    """``prunelab submit SPEC --model FILE --data FILE…``: upload the files, put their ids into the spec
    (read as plain data: the server validates it), and submit it.

    Returns:
        The new experiment's id.

    Raises:
        ClientError: the spec file cannot be read (exit code 2), a file is refused, or the spec is.
    """
    from prunespec.spec_yaml import SpecTooComplex, load_yaml

    try:
        raw = load_yaml(Path(args.spec).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SpecTooComplex, ValueError) as exc:
        raise ClientError(f"{args.spec}: cannot read the spec: {exc}", exit_code=2) from None
    if not isinstance(raw, dict):
        raise ClientError(f"{args.spec}: a spec must be a mapping of fields", exit_code=2)
    model_id = data_id = None
    if args.model is not None:
        item = upload(client, "model", [args.model])
        model_id = int(item["id"])
        print(summary_line(item), flush=True)
    if args.data:
        item = upload(client, "dataset", list(args.data))
        data_id = int(item["id"])
        print(summary_line(item), flush=True)
    body = {"spec": with_uploads(raw, model_id, data_id, args.weights), "tags": args.tag, "notes": args.notes}
    return int(client.post_json("/api/experiments", body)["id"])


def add_submit_upload_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--data`` and ``--weights`` on ``prunelab submit``."""
    parser.add_argument("--model", type=Path, metavar="FILE.keras", help="upload this model and prune it")
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        metavar="FILE",
        help="upload this .npz (or IDX file; repeat) as the data",
    )
    parser.add_argument(
        "--weights",
        choices=["trained", "reinitialize"],
        default="trained",
        help="with --model: start from its trained weights (default) or fresh ones",
    )
