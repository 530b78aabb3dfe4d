"""The ``prunelab`` verbs that manage experiments on a server: list, show, cancel, rerun, delete, export,
push (their tables and outcome lines come from ``backend.client_format``).

Every verb talks to the server through :class:`backend.client.PrunelabClient` (``--server``/``--token``,
else the environment). Exit codes: 0 done, 1 the server refused or could not be reached, 2 bad input
(the command line, a file, or fields the server found invalid).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from backend.client import EXIT_USAGE, ClientError, PrunelabClient, client_from
from backend.client_format import aligned, count_text, cycles_table, metric_text, outcome_lines
from backend.models import Status
from backend.schemas_exchange import MAX_IMPORT_MODEL_BYTES

#: Experiment states ``prunelab list --status`` accepts.
STATUSES = tuple(status.value for status in Status)
#: Largest ``final.keras`` ``prunelab push`` uploads with the results: what the server stores.
MAX_PUSH_MODEL_BYTES = MAX_IMPORT_MODEL_BYTES

VerbHandler = Callable[[argparse.Namespace, PrunelabClient], int]


# --------------------------------------------------------------------------------------------- verbs


def print_outcome(client: PrunelabClient, experiment_id: int, out: IO[str] | None = None) -> None:
    """Read an experiment and print :func:`outcome_lines`.

    Raises:
        ClientError: the server refused or could not be reached.
    """
    detail = client.get_json(f"/api/experiments/{experiment_id}")
    print(*outcome_lines(detail), sep="\n", file=out or sys.stdout)


def list_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab list``: one line per experiment, newest first."""
    params: dict[str, Any] = {"limit": args.limit, "sort": args.sort, "order": args.order}
    for name in ("status", "tag", "owner", "q"):
        value = getattr(args, name)
        if value:
            params[name] = value
    page = client.get_json("/api/experiments", params)
    rows = [["id", "status", "name", "owner", "cycles", "params", "FLOPs", "final metric", "created"]]
    for item in page["items"]:
        metric = item.get("metric_name") or ""
        final = (
            f"{metric} {metric_text(item.get('final_metric'))}"
            if item.get("final_metric") is not None
            else ""
        )
        rows.append(
            [
                str(item["id"]),
                item["status"] + (" (cancelling)" if item.get("cancel_requested") else ""),
                item["name"],
                item["owner"],
                str(item.get("cycles_done", 0)),
                count_text(item.get("final_params") or item.get("initial_params")),
                count_text(item.get("final_flops") or item.get("initial_flops")),
                final,
                str(item.get("created_at", ""))[:19].replace("T", " "),
            ]
        )
    print(*aligned(rows, left={1, 2, 3, 7}), sep="\n")
    shown = len(page["items"])
    if page["total"] > shown:
        print(f"({shown} of {page['total']}; --limit shows more)")
    return 0


def show_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab show ID``: headline numbers, the outcome and the cycles table."""
    detail = client.get_json(f"/api/experiments/{args.id}")
    print(f"#{detail['id']} {detail['name']} — {detail['status']}, owner {detail['owner']}")
    print(f"page: {client.dashboard_url(detail['id'])}")
    if detail.get("tags"):
        print(f"tags: {', '.join(detail['tags'])}")
    print(
        f"params {count_text(detail.get('initial_params'))} → {count_text(detail.get('final_params'))}; "
        f"FLOPs {count_text(detail.get('initial_flops'))} → {count_text(detail.get('final_flops'))}; "
        f"cycles {detail.get('cycles_done', 0)}"
    )
    print(*outcome_lines(detail)[1:], sep="\n")
    if detail.get("cycles"):
        print()
        print(*cycles_table(detail["cycles"], detail.get("final_cycle")), sep="\n")
    return 0


def cancel_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab cancel ID``: a queued experiment stops at once, a running one after its epoch."""
    summary = client.post_json(f"/api/experiments/{args.id}/cancel")
    if summary.get("status") == "running":
        print(f"experiment {args.id}: cancel requested; it stops after the current epoch")
    else:
        print(f"experiment {args.id}: {summary.get('status')}")
    return 0


def rerun_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab rerun ID``: the same spec again, as a new experiment."""
    created = client.post_json(f"/api/experiments/{args.id}/rerun")
    print(f"rerun of {args.id}: experiment {created['id']} queued: {client.dashboard_url(created['id'])}")
    return 0


def _confirmed(question: str, stdin: IO[str]) -> bool:
    print(f"{question} [y/N] ", end="", flush=True, file=sys.stderr)
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def delete_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab delete ID``: delete with its cycles and files, after a yes (or ``--yes``)."""
    if not args.yes:
        detail = client.get_json(f"/api/experiments/{args.id}")
        question = f"delete experiment {args.id} ({detail['name']}, {detail['status']}) and all its results?"
        if not _confirmed(question, sys.stdin):
            print("not deleted", file=sys.stderr)
            return EXIT_USAGE
    client.delete(f"/api/experiments/{args.id}")
    print(f"deleted experiment {args.id}")
    return 0


def export_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab export ID``: the experiment's cycles (or epochs) as CSV, or everything as JSON."""
    params = {"format": args.format, "what": args.what}
    response = client.request("GET", f"/api/experiments/{args.id}/export", params=params)
    if args.output is None:
        sys.stdout.write(response.text)
        return 0
    try:
        args.output.write_bytes(response.content)
    except OSError as exc:
        raise ClientError(f"{args.output}: cannot write: {exc}", EXIT_USAGE) from None
    print(f"wrote {args.output} ({len(response.content):,} bytes)", file=sys.stderr)
    return 0


def push_body(run_dir: Path, owner: str, tags: list[str], notes: str) -> tuple[dict[str, Any], str]:
    """The import request for a ``prunelab run`` directory, and what happened to its model file.

    Args:
        run_dir: holds ``results.json`` (and usually ``spec.yaml`` and ``final.keras``).
        owner, tags, notes: as for ``submit``.

    Returns:
        The body of ``POST /api/experiments/import`` and a sentence about ``final.keras``.

    Raises:
        ClientError: the directory has no readable ``results.json`` (exit code 2).
    """
    results_path = run_dir / "results.json"
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClientError(
            f"{results_path}: no such file (is {run_dir} a `prunelab run` directory?)", EXIT_USAGE
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ClientError(f"{results_path}: not readable results: {exc}", EXIT_USAGE) from None
    body: dict[str, Any] = {"results": results, "owner": owner, "tags": tags, "notes": notes}
    model = run_dir / "final.keras"
    if not model.is_file():
        return body, "no final.keras in the directory; pushed the numbers only"
    size = model.stat().st_size
    if size > MAX_PUSH_MODEL_BYTES:
        return body, (
            f"final.keras ({size:,} bytes) is over {MAX_PUSH_MODEL_BYTES:,} bytes and was not uploaded; "
            "pushed the numbers only"
        )
    body["final_model"] = base64.b64encode(model.read_bytes()).decode("ascii")
    return body, f"uploaded final.keras ({size:,} bytes) as the final model"


def push_verb(args: argparse.Namespace, client: PrunelabClient) -> int:
    """``prunelab push RUN_DIR``: a local run joins the server's history as a succeeded experiment."""
    body, model_note = push_body(args.run_dir, args.owner, args.tag, args.notes)
    created = client.post_json("/api/experiments/import", body)
    print(f"pushed {args.run_dir} as experiment {created['id']}: {client.dashboard_url(created['id'])}")
    print(model_note)
    return 0


# --------------------------------------------------------------------------------------------- wiring


def run_verb(handler: VerbHandler, args: argparse.Namespace) -> int:
    """Run a verb with a client for ``--server``/``--token``; a ClientError becomes its message and code."""
    try:
        with client_from(args.server, args.token) as client:
            return handler(args, client)
    except ClientError as exc:
        print(f"prunelab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def connection_options() -> argparse.ArgumentParser:
    """``--server`` and ``--token``, shared by every verb that talks to a server."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--server",
        metavar="URL",
        default=None,
        help="the prunelab server (default $PRUNELAB_SERVER, else http://$PRUNELAB_HOST:$PRUNELAB_PORT, "
        "else http://127.0.0.1:8000)",
    )
    parent.add_argument(
        "--token", default=None, help="API token sent as a bearer token (default $PRUNELAB_TOKEN)"
    )
    return parent


def _positive_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"an experiment id is a whole number from 1, got {text!r}")
    return int(text)


def add_client_commands(commands: Any, parent: argparse.ArgumentParser) -> None:
    """Add list, show, cancel, rerun, delete, export and push to the ``prunelab`` subparsers.

    Args:
        commands: the subparsers action of the ``prunelab`` parser.
        parent: :func:`connection_options` (``--server``, ``--token``).
    """

    def verb(name: str, handler: VerbHandler, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, parents=[parent])
        parser.set_defaults(handler=lambda args: run_verb(handler, args))
        return parser

    listing = verb("list", list_verb, "list experiments on a server")
    listing.add_argument("--status", action="append", choices=STATUSES, help="only these states (repeat)")
    listing.add_argument("--tag", help="only experiments with this tag")
    listing.add_argument("--owner", help="only this owner's experiments")
    listing.add_argument("--name", dest="q", metavar="TEXT", help="only names containing TEXT")
    listing.add_argument("--limit", type=int, default=20, help="at most this many, 1 to 500 (default 20)")
    listing.add_argument(
        "--sort",
        default="created",
        choices=["created", "name", "status", "owner", "final_metric", "final_params", "final_flops", "id"],
        help="order by (default created)",
    )
    listing.add_argument("--order", default="desc", choices=["asc", "desc"], help="default desc")

    for name, handler, help_text in (
        ("show", show_verb, "an experiment's numbers and cycles"),
        ("cancel", cancel_verb, "cancel a queued or running experiment"),
        ("rerun", rerun_verb, "run an experiment's spec again as a new experiment"),
    ):
        verb(name, handler, help_text).add_argument("id", type=_positive_id, metavar="ID")

    delete = verb("delete", delete_verb, "delete an experiment and its results")
    delete.add_argument("id", type=_positive_id, metavar="ID")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    export = verb("export", export_verb, "an experiment's cycles or epochs as CSV, or all of it as JSON")
    export.add_argument("id", type=_positive_id, metavar="ID")
    export.add_argument("--format", choices=["csv", "json"], default="csv", help="default csv")
    export.add_argument(
        "--what", choices=["cycles", "epochs"], default="cycles", help="CSV rows: cycles (default) or epochs"
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default stdout)")

    push = verb("push", push_verb, "upload a `prunelab run` result directory to a server")
    push.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="holds spec.yaml and results.json")
    push.add_argument("--owner", default="anonymous", help="who the experiment belongs to")
    push.add_argument("--tag", action="append", default=[], help="a tag (repeat for more)")
    push.add_argument("--notes", default="", help="free text shown beside the experiment")
