"""Configuration from the environment (prefix ``PRUNELAB_``), with an embedded default.

With nothing set, everything lives in the data directory (``~/.prunelab``): a SQLite database and a
SQLite-backed Celery transport, so ``prunelab serve`` needs no server process. A team sets
``PRUNELAB_DATABASE_URL=postgresql+psycopg://…`` and ``PRUNELAB_BROKER_URL=redis://…``.

The embedded broker is kombu's SQLAlchemy transport on ``<data_dir>/broker.db``. It works with late
acknowledgement: a delivered message stays hidden until its task ends, and a warm shutdown or a lost
pool child puts it back. A worker killed outright loses the message it held (this transport has no
visibility timeout), so every worker re-queues running experiments whose heartbeat is older than
``lease_seconds`` (the orphan sweep), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from prunespec import datapaths

#: Host names a local server answers to (``Settings.allowed_hosts``'s default).
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}


class Settings(BaseSettings):
    """prunelab's settings.

    Attributes:
        data_dir: where the embedded database, broker and datasets live. Default ``~/.prunelab``.
        database_url: SQLAlchemy URL. Default SQLite in ``data_dir``. ``postgres://`` and
            ``postgresql://`` are normalised to the psycopg 3 driver.
        broker_url: Celery broker URL. Default a SQLite-backed transport in ``data_dir`` (no server).
        max_attempts: deliveries of one experiment before it is failed (a worker that dies mid-run
            counts one attempt).
        heartbeat_seconds: how often a running experiment proves its worker is alive.
        lease_seconds: a running experiment whose heartbeat is older than this is presumed orphaned
            and may be taken over by another delivery.
        soft_time_limit / time_limit: Celery's per-task limits in seconds.
        broker_visibility_timeout: seconds before Redis (or SQS) redelivers an unacknowledged task.
        allowed_hosts: host names a request's ``Host`` header may name (any port), besides the bound
            ``host``. Default localhost, 127.0.0.1 and [::1]. Add the server's public name when it
            binds 0.0.0.0; ``*`` turns the check off.
        max_parameters: most parameters a submitted model may have. Default 5e7.
        max_flops_per_example: most FLOPs per example (inference, ``prunespec.costs``). Default 2e10.
        max_training_examples_epochs: most training examples × epochs over all cycles of one
            experiment (cycle 0's epochs plus ``max_cycles - 1`` retrainings). Default 5e8.
        max_wall_seconds: a running experiment stops after this many seconds since it started
            (stop reason ``time_limit``, finished cycles kept; counted per delivery, checked after
            every epoch). Keep it below ``soft_time_limit``, which otherwise fails the run first.
            Default 4 h.
        max_body_bytes: longest request body, in bytes (413 beyond). Default 1 MiB.
        max_streams / max_streams_per_client: event streams open at once, in all and per client
            address (429 beyond). Default 400 and 100.
        requeue_after_seconds: a queued experiment or crossover run that no worker claimed for this long
            (since it was created or last re-sent) has its id sent again by the worker's sweep (a lost
            broker message); the wait doubles with every re-send, up to 8 times. Default 300.
        worker_memory_limit_mb: the memory one experiment may need to train (``backend.memory``'s
            estimate); a worker fails a larger experiment at once instead of being killed by the
            out-of-memory killer. 0 (default): the memory of the machine the worker runs on (or of
            its cgroup, when that is smaller).
        auth: require a signed-in user (an API token or a browser session). Default True. False
            (``PRUNELAB_AUTH=off``) makes every request a local admin and is refused unless ``host``
            is a loopback address.
        session_days: how long a browser session lasts. Default 14.
        signin_attempts / signin_lock_seconds: failed sign-ins from one address, or naming one user,
            before sign-in is locked for that long (429). Default 10 per 15 minutes.
        submissions_per_minute: experiments one user may create (or rerun) per minute (429 with
            ``Retry-After`` beyond). Default 30.
        experiments_per_machine: experiment processes running at once on this machine (workers ×
            their concurrency). Default 1.
        tf_intra_op_threads / tf_inter_op_threads: TensorFlow's thread pools in one experiment process.
            Default: the machine's cores // ``experiments_per_machine`` (at least 1).
        max_model_upload_bytes / max_data_upload_bytes: longest body of ``POST /api/models`` and
            ``POST /api/datasets`` (413 while it streams in). Default 200 MB and 2 GB.
        upload_memory_mb / upload_cpu_seconds / upload_wall_seconds: the address space, CPU time and
            wall time of the subprocess that inspects one upload (``worker.ingest``). Default 4,096 MiB,
            120 s and 300 s.
        upload_max_entries / upload_max_ratio: most entries in an uploaded zip (.keras, .npz), and most
            uncompressed bytes per compressed byte of one entry. Default 64 and 200.
    """

    model_config = SettingsConfigDict(env_prefix="PRUNELAB_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".prunelab")
    database_url: str = ""
    broker_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_attempts: int = Field(default=3, ge=1, le=100)
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=3600)
    lease_seconds: float = Field(default=60.0, gt=0, le=86_400)
    soft_time_limit: int = Field(default=6 * 3600, ge=10)
    time_limit: int = Field(default=6 * 3600 + 300, ge=10)
    broker_visibility_timeout: int = Field(default=3600, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    # Host names the server answers to (the Host header, any port); the bound ``host`` is added
    # (``backend.api.security``). "*" allows any. The environment takes a comma-separated list.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS), min_length=1
    )
    # TensorFlow threads of one experiment process (``worker.runtime``). Default (None): the machine's
    # cores shared among ``experiments_per_machine`` processes, so several workers never oversubscribe.
    experiments_per_machine: int = Field(default=1, ge=1, le=1024)
    tf_intra_op_threads: int | None = Field(default=None, ge=1, le=1024)
    tf_inter_op_threads: int | None = Field(default=None, ge=1, le=1024)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    # Bounds: what one request may ask of this server (``backend.limits``, ``backend.api.body_limit``,
    # ``backend.api.stream_slots``). ``prunelab run`` (local, no server) is not bound by them.
    max_parameters: int = Field(default=50_000_000, ge=1)
    max_flops_per_example: int = Field(default=20_000_000_000, ge=1)
    max_training_examples_epochs: int = Field(default=500_000_000, ge=1)
    max_wall_seconds: int = Field(default=4 * 3600, ge=10)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_streams: int = Field(default=400, ge=1)
    max_streams_per_client: int = Field(default=100, ge=1)
    # stuck jobs (issue 12): re-sending unclaimed queued runs, and the worker's memory limit
    requeue_after_seconds: float = Field(default=300.0, gt=0, le=7 * 86_400)
    worker_memory_limit_mb: int = Field(default=0, ge=0, le=1 << 30)
    # authentication (issue 15, ``backend.auth``): off only on a loopback address
    auth: bool = True
    session_days: float = Field(default=14.0, gt=0, le=366)
    signin_attempts: int = Field(default=10, ge=1, le=10_000)
    signin_lock_seconds: float = Field(default=900.0, gt=0, le=86_400)
    submissions_per_minute: int = Field(default=30, ge=1, le=100_000)
    # uploads (issue 16, ``backend.service.uploads``, ``worker.ingest``)
    max_model_upload_bytes: int = Field(default=200_000_000, ge=1024)
    max_data_upload_bytes: int = Field(default=2_000_000_000, ge=1024)
    upload_memory_mb: int = Field(default=4096, ge=0, le=1 << 20)
    upload_cpu_seconds: int = Field(default=120, ge=0, le=86_400)
    upload_wall_seconds: float = Field(default=300.0, gt=0, le=86_400)
    upload_max_entries: int = Field(default=64, ge=1, le=100_000)
    upload_max_ratio: float = Field(default=200.0, ge=1.0, le=1e6)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url", "broker_url", mode="after")
    @classmethod
    def _no_placeholder(cls, value: str) -> str:
        if any(f":{word}@" in value.lower() for word in _PLACEHOLDERS):
            raise ValueError("the URL carries a placeholder password; set a real one")
        return value.strip()

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'prunelab.db'}"
        self.database_url = normalise_database_url(self.database_url)
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.db'}"
        if self.time_limit <= self.soft_time_limit:
            raise ValueError("time_limit must be above soft_time_limit")
        return self

    @property
    def embedded(self) -> bool:
        """True when the broker needs no server process (``prunelab serve`` then runs a worker too)."""
        return self.broker_url.startswith(("sqla+", "memory://", "filesystem://"))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def data_dirs(self) -> list[Path]:
        """Where this server (and its workers) look for dataset files: :attr:`data_dir`, then the
        engine's defaults (``$PRUNELAB_DATA_DIR``, ``~/.keras/datasets``)."""
        return datapaths.data_dirs(self.data_dir)

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def normalise_database_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` → ``postgresql+psycopg://`` (the installed driver)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides (tests inject their own)."""
    return Settings(**overrides)
