"""``prunelab serve`` and ``prunelab worker``: the API process and the Celery worker processes.

The API process never imports TensorFlow. Workers run Celery's prefork pool: the parent process
forks its children before any task runs, and TensorFlow is imported only inside the task body, so no
process forks after TensorFlow is loaded.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from backend.settings import Settings

PR_SET_PDEATHSIG = 1


def hide_broker_password(url: str) -> str:
    """The broker URL with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def worker_command(concurrency: int = 1, loglevel: str = "INFO", extra: Sequence[str] = ()) -> list[str]:
    """The command line of a Celery worker running prunelab's tasks."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        *extra,
    ]


def settings_environment(settings: Settings) -> dict[str, str]:
    """This process's environment plus the settings a child process must share."""
    env = dict(os.environ)
    env.update(
        {
            "PRUNELAB_DATA_DIR": str(settings.data_dir),
            "PRUNELAB_DATABASE_URL": settings.database_url,
            "PRUNELAB_BROKER_URL": settings.broker_url,
        }
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the API process dies.

    uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, which ends the API process without
    running ``finally`` blocks; without this the embedded worker would outlive it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the finally block in serve() is the only cleanup
        pass


def start_worker(settings: Settings, concurrency: int = 1) -> subprocess.Popen[bytes]:
    """A worker process beside the API (the embedded configuration), in its own process group."""
    return subprocess.Popen(
        worker_command(concurrency, extra=["--hostname", "embedded@%h"]),
        env=settings_environment(settings),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Ask the worker to finish its current epoch's bookkeeping and stop; kill it if it will not."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def serve(settings: Settings, *, with_worker: bool) -> None:
    """Run the API (and, in the embedded configuration, one worker) until interrupted.

    Raises:
        backend.migrate.MigrationRequired: the database is not at the schema head.
        backend.auth.bootstrap.UnsafeBind: authentication is off on a non-loopback address.
    """
    import uvicorn

    from backend.app import create_app
    from backend.auth.bootstrap import require_safe_bind, signin_url

    require_safe_bind(settings)
    app = create_app(settings)
    worker = start_worker(settings) if with_worker else None
    url = f"http://{settings.host}:{settings.port}"
    print(f"prunelab: serving {url}  (API docs: {url}/docs)", flush=True)
    link = signin_url(settings, app.state.context.session_factory)
    if link is not None:
        print(f"prunelab: created the admin user; sign in (once) at {link}", flush=True)
        print("prunelab: more users and API tokens: prunelab users add NAME --role member", flush=True)
    elif not settings.auth:
        print(
            "prunelab: authentication is off (PRUNELAB_AUTH=off): every request acts as a local admin",
            flush=True,
        )
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"prunelab: database {database}; broker {hide_broker_password(settings.broker_url)}", flush=True)
    if worker is not None:
        print(f"prunelab: started a worker (pid {worker.pid})", flush=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    finally:
        if worker is not None:
            stop_worker(worker)


def run_worker(settings: Settings, concurrency: int, loglevel: str) -> None:
    """Replace this process by a Celery worker (``prunelab worker``)."""
    command = worker_command(concurrency, loglevel)
    os.execve(command[0], command, settings_environment(settings))
