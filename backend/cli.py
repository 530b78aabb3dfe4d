"""The ``prunelab`` command line.

Subcommands:
    run SPEC.yaml      run an experiment in this process and write its results to a directory.
    serve              the web API (and, with the embedded default, one worker beside it).
    worker             a Celery worker that runs queued experiments.
    submit SPEC.yaml   send a spec to a server over HTTP; ``--follow`` prints its progress and outcome.
    list, show ID, cancel ID, rerun ID, delete ID, export ID, push RUN_DIR
                       manage experiments on a server (``backend.client_cli``; ``--server``/``--token``,
                       else $PRUNELAB_SERVER or $PRUNELAB_HOST:$PRUNELAB_PORT, and $PRUNELAB_TOKEN).
    db upgrade         bring the database to the schema this version needs.
    bench MODEL.keras  convert a saved model to TFLite formats, check and time them (``--experiment ID``:
                       an experiment's cycles in the configured database, stored as the worker would).
    crossover          time dense against sparse products of one layer shape across densities.

This module never imports TensorFlow: ``run``, ``bench`` and ``crossover`` validate their input first
(fast, so a typo costs no TensorFlow start-up) and only then import ``worker.local_run`` or
``worker.bench_cli``.

TensorFlow's start-up and retracing messages are hidden unless ``--verbose`` (``worker.tf_noise``).

Exit codes: 0 success, 1 the server refused the request or could not be reached (401, 403, 404, 409,
429, 5xx; ``submit --follow``: the experiment failed), 2 bad input (command line, missing or unreadable
spec, invalid YAML, invalid spec, dataset error, fields the server refused with 422), 130 cancelled with
Ctrl-C (what finished is still written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydantic
import yaml

from backend.client_cli import add_client_commands, connection_options
from backend.client_uploads import add_submit_upload_options, add_upload_commands
from backend.version import package_version
from prunespec.spec import ExperimentSpec, load_spec, written_location
from prunespec.spec_yaml import load_yaml
from prunespec.stops import StopReason

#: Exit code for bad input (as argparse uses for a bad command line).
EXIT_USAGE = 2
#: Exit code after a run stopped with Ctrl-C (128 + SIGINT).
EXIT_CANCELLED = 130

#: ``--verbose``'s help (``run``, ``serve``, ``worker``, ``bench``, ``crossover``).
VERBOSE_HELP = "show TensorFlow's start-up and retracing messages"

Handler = Callable[[argparse.Namespace], int]


class SpecFileError(Exception):
    """A spec file that cannot be used; ``lines`` say why, one problem a line."""

    def __init__(self, lines: Sequence[str]):
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def field_path(loc: Sequence[int | str], data: Any) -> str:
    """The dotted path of a pydantic error location, as the user wrote the fields.

    Args:
        loc: the error's ``loc`` tuple.
        data: the input that was validated.

    Returns:
        The path joined with dots, or an empty string for an error on the whole spec.
    """
    return ".".join(str(part) for part in written_location(loc, data))


def validation_lines(error: pydantic.ValidationError, data: Any) -> list[str]:
    """One ``field.path: message`` line per validation error.

    Args:
        error: the error pydantic raised.
        data: the input that was validated (to name fields as the user wrote them).

    Returns:
        The lines, in pydantic's order; errors on the whole spec have no path prefix.
    """
    lines = []
    for detail in error.errors():
        message = str(detail["msg"]).removeprefix("Value error, ")
        path = field_path(detail["loc"], data)
        lines.append(f"{path}: {message}" if path else message)
    return lines


def read_spec(path: Path) -> ExperimentSpec:
    """Load and validate a spec file, turning every way it can be wrong into a SpecFileError.

    Args:
        path: a YAML or JSON spec file.

    Returns:
        The validated spec.

    Raises:
        SpecFileError: the file is missing or unreadable, is not valid YAML, is not a mapping, or fails
            validation (one line per invalid field).
    """
    try:
        return load_spec(path)
    except FileNotFoundError:
        raise SpecFileError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecFileError([f"{path}: cannot read the file: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise SpecFileError([f"{path}: not valid YAML: {exc}"]) from None
    except pydantic.ValidationError as exc:
        data = load_yaml(path.read_text(encoding="utf-8"))
        lines = [f"  {line}" for line in validation_lines(exc, data)]
        count = exc.error_count()
        heading = f"{path}: invalid spec ({count} error{'s' if count != 1 else ''}):"
        raise SpecFileError([heading, *lines]) from None
    except ValueError as exc:  # not a mapping (checked after ValidationError, which is a ValueError too)
        raise SpecFileError([str(exc)]) from None


def _raw_names_uploads(path: Path, names_uploads: Any) -> bool:
    """Whether a spec file names an upload by id (False when it cannot be read: read_spec says why)."""
    try:
        return bool(names_uploads(load_yaml(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return False


def _error(message: str, *details: str) -> None:
    print(f"prunelab: error: {message}", *details, sep="\n", file=sys.stderr)


def run_command(args: argparse.Namespace) -> int:
    """``prunelab run``: validate the spec, then run it in this process.

    Args:
        args: ``spec``, ``out``, ``data_dir`` and ``quiet`` from the parser.

    Returns:
        0 when the cycles finished, 2 for bad input, 130 when cancelled or aborted with Ctrl-C.
    """
    try:
        spec = read_spec(Path(args.spec))
    except SpecFileError as exc:
        _error(*exc.lines)
        return EXIT_USAGE
    try:
        return _run_validated(spec, args)
    except KeyboardInterrupt:  # the second Ctrl-C, or one before the cycles started
        print("aborted", file=sys.stderr)
        return EXIT_CANCELLED


def _quiet_tensorflow(args: argparse.Namespace) -> None:
    """Load TensorFlow without its start-up lines, unless ``--verbose`` (which children inherit)."""
    from worker.tf_noise import import_tensorflow_quietly

    import_tensorflow_quietly(verbose=getattr(args, "verbose", False))


def _run_validated(spec: ExperimentSpec, args: argparse.Namespace) -> int:
    _quiet_tensorflow(args)
    from worker import local_run  # imports TensorFlow: only once the spec is known to be good

    try:
        run = local_run.run_local(spec, out_dir=args.out, data_dir=args.data_dir, quiet=args.quiet)
    except local_run.USER_ERRORS as exc:
        _error(str(exc))
        return EXIT_USAGE
    except local_run.ExperimentCancelled:
        print("cancelled before the first cycle finished", file=sys.stderr)
        return EXIT_CANCELLED
    if run.result.stop_reason == StopReason.cancelled:
        print(f"cancelled; wrote what finished to {run.out_dir}", file=sys.stderr)
        return EXIT_CANCELLED
    return 0


def _settings(args: argparse.Namespace) -> Any:
    from backend.settings import get_settings

    overrides = {key: value for key in ("host", "port") if (value := getattr(args, key, None)) is not None}
    return get_settings(**overrides)


def serve_command(args: argparse.Namespace) -> int:
    """``prunelab serve``: the API, plus one worker when the broker needs no server."""
    from backend.migrate import MigrationRequired
    from backend.serve import serve
    from worker.tf_noise import quiet_environment

    quiet_environment(args.verbose)  # the embedded worker inherits it
    settings = _settings(args)
    with_worker = settings.embedded if args.worker is None else args.worker
    from backend.auth.bootstrap import UnsafeBind

    try:
        serve(settings, with_worker=with_worker)
    except (MigrationRequired, UnsafeBind) as exc:
        _error(str(exc))
        return EXIT_USAGE
    return 0


def worker_command(args: argparse.Namespace) -> int:
    """``prunelab worker``: replace this process by a Celery worker."""
    from backend.serve import run_worker
    from worker.tf_noise import quiet_environment

    quiet_environment(args.verbose)  # the Celery worker inherits it
    run_worker(_settings(args), args.concurrency, args.loglevel)
    return 0  # not reached: the process was replaced


def db_command(args: argparse.Namespace) -> int:
    """``prunelab db upgrade``: migrate the configured database to head."""
    from backend.migrate import upgrade_to_head

    settings = _settings(args)
    upgrade_to_head(settings)
    print(f"prunelab: database at head ({settings.database_url})")
    return 0


def submit_command(args: argparse.Namespace) -> int:
    """``prunelab submit``: validate locally, POST, print the experiment's page; ``--follow`` prints its
    progress and ends with its outcome (stop reason, the kept cycle and its numbers).

    Returns:
        0 when submitted (with ``--follow``: when it succeeded), 1 when the server refused it or it
        failed, 2 for bad input, 130 when cancelled.
    """
    from backend.client import ClientError, client_from
    from backend.client_cli import print_outcome
    from backend.client_uploads import names_uploads, submit_with_uploads
    from backend.submit import follow, submit

    # a spec naming uploads is validated by the server: it alone knows what they hold
    uploading = args.model is not None or args.data or _raw_names_uploads(Path(args.spec), names_uploads)
    spec = None
    if not uploading:
        try:
            spec = read_spec(Path(args.spec))
        except SpecFileError as exc:
            _error(*exc.lines)
            return EXIT_USAGE
    try:
        with client_from(args.server, args.token) as client:
            if spec is None:
                experiment_id = submit_with_uploads(client, args)
            else:
                experiment_id = submit(client, spec, owner=args.owner, tags=args.tag, notes=args.notes)
            print(f"submitted experiment {experiment_id}: {client.dashboard_url(experiment_id)}", flush=True)
            if not args.follow:
                return 0
            status = follow(client, experiment_id)
            print_outcome(client, experiment_id)
    except ClientError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(status, 1)


#: Built-in data sets ``prunelab bench --data`` accepts by name.
BENCH_DATASETS = ("sum", "mnist", "fashion-mnist")
#: ``prunelab bench`` options and the ``benchmark`` spec fields they set.
BENCH_OPTIONS = {
    "formats": "formats",
    "runs": "runs",
    "warmup": "warmup",
    "threads": "threads",
    "samples": "fidelity_samples",
}


def _bench_data(value: str | None) -> ExperimentSpec | str | None:
    """``--data``: a spec file's data set, or a built-in data set's name.

    Raises:
        SpecFileError: the spec file cannot be used, or the value is neither a file nor a known name.
    """
    if value is None or value in BENCH_DATASETS:
        return value
    if Path(value).suffix.lower() in (".yaml", ".yml", ".json") or Path(value).exists():
        return read_spec(Path(value))
    raise SpecFileError([f"--data: '{value}' is neither a spec file nor one of {list(BENCH_DATASETS)}"])


def _connection_options_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--sparsity``, ``--finetune-epochs`` and ``--save-pruned``, if anything."""
    if args.sparsity is None:
        if args.save_pruned is not None or args.finetune_epochs != 1:
            return "--finetune-epochs and --save-pruned go with --sparsity"
        return None
    if args.experiment is not None:
        return "--sparsity prunes a model file's connections, not an experiment's"
    if not 0 < args.sparsity < 1:
        return f"--sparsity: the fraction of weights set to zero must lie in (0, 1), got {args.sparsity}"
    if not 0 <= args.finetune_epochs <= 1000:
        return f"--finetune-epochs: must lie in [0, 1000], got {args.finetune_epochs}"
    if args.data is None:
        return "--sparsity fine-tunes the pruned model on a data set: give it with --data SPEC.yaml|DATASET"
    return None


def bench_command(args: argparse.Namespace) -> int:
    """``prunelab bench``: benchmark a saved model, or an experiment's cycles, as TFLite.

    Returns:
        0, 1 when a format failed (the table says why), 2 for bad input.
    """
    from prunespec.spec import BenchmarkSpec

    if (args.model is None) == (args.experiment is None):
        _error("give either MODEL.keras or --experiment ID")
        return EXIT_USAGE
    if args.experiment is not None and args.data is not None:
        _error("--data is for a model file; an experiment is checked on its own data set")
        return EXIT_USAGE
    connection_error = _connection_options_error(args)
    if connection_error:
        _error(connection_error)
        return EXIT_USAGE
    overrides = {
        field: value
        for option, field in BENCH_OPTIONS.items()
        if (value := getattr(args, option)) is not None
    }
    try:
        BenchmarkSpec.model_validate(overrides)
        data = _bench_data(args.data)
    except pydantic.ValidationError as exc:
        _error("invalid benchmark settings:", *validation_lines(exc, overrides))
        return EXIT_USAGE
    except SpecFileError as exc:
        _error(*exc.lines)
        return EXIT_USAGE
    _quiet_tensorflow(args)
    from worker import bench_cli  # imports TensorFlow: only once the input is known to be good

    dirs = [] if args.data_dir is None else [args.data_dir]
    try:
        if args.experiment is not None:
            return bench_cli.bench_experiment(
                args.experiment, cycles=args.cycles, overrides=overrides, data_dirs=dirs
            )
        connections = None
        if args.sparsity is not None:
            connections = bench_cli.ConnectionPruningOptions(
                args.sparsity, args.finetune_epochs, args.save_pruned
            )
        return bench_cli.bench_model(
            Path(args.model), overrides=overrides, data=data, data_dirs=dirs, connections=connections
        )
    except bench_cli.BenchInputError as exc:
        _error(str(exc))
        return EXIT_USAGE


def crossover_command(args: argparse.Namespace) -> int:
    """``prunelab crossover``: time dense against sparse products here, or on a server with ``--server``.

    Returns:
        0, 1 when the run failed, 2 for bad input.
    """
    from backend.schemas_benchmarks import CrossoverCreate

    names = ("rows", "cols", "batch", "densities", "backends", "runs", "warmup", "threads", "block_rows")
    fields = {name: value for name in names if (value := getattr(args, name)) is not None}
    try:
        request = CrossoverCreate.model_validate(fields)
    except pydantic.ValidationError as exc:
        _error("invalid crossover run:", *validation_lines(exc, fields))
        return EXIT_USAGE
    from worker.tf_noise import quiet_environment

    quiet_environment(args.verbose)
    from worker import bench_cli  # no TensorFlow until the run itself

    try:
        if args.server is not None:
            return bench_cli.crossover_on_server(args.server, request)
        return bench_cli.crossover_here(request)
    except bench_cli.BenchInputError as exc:
        _error(str(exc))
        return EXIT_USAGE


def _add_benchmark_commands(commands: Any) -> None:
    from typing import get_args

    from prunespec.spec import TFLiteFormat

    formats = list(get_args(TFLiteFormat))
    bench = commands.add_parser(
        "bench", help="convert a model (or an experiment's cycles) to TFLite and time it"
    )
    bench.add_argument("model", metavar="MODEL.keras", nargs="?", help="a saved Keras model")
    bench.add_argument(
        "--experiment", type=int, metavar="ID", help="an experiment in the configured database"
    )
    bench.add_argument(
        "--cycles", choices=["first_last", "every"], help="with --experiment (default: its spec's)"
    )
    bench.add_argument("--formats", nargs="+", choices=formats, help="TFLite formats (default float32)")
    bench.add_argument("--runs", type=int, help="timed invocations per model (default 200)")
    bench.add_argument("--warmup", type=int, help="untimed invocations first (default 20)")
    bench.add_argument("--threads", type=int, help="interpreter threads (default 1)")
    bench.add_argument(
        "--data", metavar="SPEC.yaml|DATASET", help="data for fidelity and int8_full calibration"
    )
    bench.add_argument("--samples", type=int, help="test examples scored for fidelity (default 2000)")
    bench.add_argument("--data-dir", type=Path, metavar="DIR", help="look for dataset files here first")
    bench.add_argument(
        "--sparsity",
        type=float,
        metavar="S",
        help="also zero this fraction of every kernel's weights (smallest first), fine-tune, and "
        "benchmark the result beside the model (connection pruning; needs --data)",
    )
    bench.add_argument(
        "--finetune-epochs", type=int, default=1, metavar="N", help="with --sparsity (default 1)"
    )
    bench.add_argument(
        "--save-pruned", type=Path, metavar="PATH", help="with --sparsity: write the pruned model here"
    )
    bench.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    bench.set_defaults(handler=bench_command)

    crossover = commands.add_parser("crossover", help="dense vs sparse products across densities")
    crossover.add_argument("--rows", type=int, required=True, help="kernel rows (a dense layer's inputs)")
    crossover.add_argument("--cols", type=int, required=True, help="kernel columns (its units)")
    crossover.add_argument("--batch", type=int, help="examples per product (default 1)")
    crossover.add_argument(
        "--densities", type=float, nargs="+", help="fractions in (0, 1] (default 1%%..100%%)"
    )
    crossover.add_argument("--backends", nargs="+", choices=["tensorflow", "litert"], help="default both")
    crossover.add_argument("--runs", type=int, help="timed rounds (default 200)")
    crossover.add_argument("--warmup", type=int, help="untimed rounds first (default 20)")
    crossover.add_argument("--threads", type=int, help="threads (default 1)")
    crossover.add_argument("--block-rows", type=int, help="LiteRT: non-zeros in blocks of this many inputs")
    crossover.add_argument("--server", metavar="URL", help="run it on this prunelab server instead")
    crossover.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    crossover.set_defaults(handler=crossover_command)


def _add_service_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", help="run the web API (and a worker with the embedded default)")
    serve.add_argument(
        "--host", default=None, help="address to listen on (default $PRUNELAB_HOST or 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=None, help="port (default $PRUNELAB_PORT or 8000)")
    group = serve.add_mutually_exclusive_group()
    group.add_argument(
        "--worker", dest="worker", action="store_true", default=None, help="also start a worker process"
    )
    group.add_argument("--no-worker", dest="worker", action="store_false", help="run the API only")
    serve.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    serve.set_defaults(handler=serve_command)

    worker = commands.add_parser("worker", help="run a Celery worker for queued experiments")
    worker.add_argument("--concurrency", type=int, default=1, help="experiments at once (default 1)")
    worker.add_argument("--loglevel", default="INFO", help="Celery log level (default INFO)")
    worker.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    worker.set_defaults(handler=worker_command)

    submit = commands.add_parser("submit", help="submit a spec to a prunelab server", parents=[connection])
    submit.add_argument("spec", metavar="SPEC.yaml", help="experiment spec (YAML or JSON)")
    submit.add_argument("--owner", default="anonymous", help="who the experiment belongs to")
    submit.add_argument("--tag", action="append", default=[], help="a tag (repeat for more)")
    submit.add_argument("--notes", default="", help="free text shown beside the experiment")
    submit.add_argument("--follow", action="store_true", help="print progress until the experiment finishes")
    add_submit_upload_options(submit)
    submit.set_defaults(handler=submit_command)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="migrate the database to the current schema")
    upgrade.set_defaults(handler=db_command)

    from backend.auth.cli import add_users_parser  # prunelab users (issue 15)

    add_users_parser(commands)


def build_parser() -> argparse.ArgumentParser:
    """The ``prunelab`` argument parser, one subparser per subcommand.

    Returns:
        A parser whose namespaces carry the subcommand's handler as ``handler``.
    """
    parser = argparse.ArgumentParser(
        prog="prunelab", description="A lab for neural-network pruning experiments."
    )
    parser.add_argument("--version", action="version", version=f"prunelab {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = connection_options()

    run = commands.add_parser(
        "run",
        help="run an experiment spec in this process",
        description="Train, measure, prune and retrain, cycle by cycle, as SPEC says; write the results.",
    )
    run.add_argument("spec", metavar="SPEC.yaml", help="experiment spec (YAML or JSON)")
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: runs/<spec name>-<UTC time>)",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="look for dataset files here first (then $PRUNELAB_DATA_DIR, then ~/.keras/datasets)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars and no table")
    run.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    run.set_defaults(handler=run_command)
    _add_service_commands(commands, connection)
    _add_benchmark_commands(commands)
    add_client_commands(commands, connection)
    add_upload_commands(commands, connection)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand.

    Args:
        argv: the arguments after the program name. Default: ``sys.argv[1:]``.

    Returns:
        The process exit code (argparse itself exits with 2 on a bad command line).
    """
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
