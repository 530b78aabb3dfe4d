"""The data directories, and keeping a dataset path that a request names inside them.

One definition for both sides: the web side checks a spec's ``dataset.path`` when a request names it
(:func:`confined_to` and :func:`check_request_path`, used by ``prunespec.spec.NpzDataset``), and the worker
checks it again with :func:`confine` when it opens the file, because a stored spec is not trusted.
``prunelab run`` reads the user's own files and does not confine them.

The data directories, in search order (:func:`data_dirs`): the directories a caller puts first (the
service's ``data_dir``, ``prunelab run --data-dir``), ``$PRUNELAB_DATA_DIR``, then Keras's cache
``~/.keras/datasets``; ``~`` expanded, duplicates dropped.

A confined path is relative, holds no ``..``, starts with no ``~``, and once every symlink is resolved
lies inside the data directory it resolved against (the first one holding the file, else the first
one). Any other path gets one message, :data:`OUTSIDE_DATA_DIRS`, whether or not the file exists, and
it names no directory: the answer tells nothing about the server's file system.

Standard library only: no NumPy, no TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePosixPath, PureWindowsPath

#: The environment variable naming a data directory (also the service's ``data_dir``).
ENV_DATA_DIR = "PRUNELAB_DATA_DIR"
#: Keras's dataset cache, the last directory searched.
KERAS_CACHE = ("~", ".keras", "datasets")
#: The one answer to a dataset path that does not stay inside the data directories.
OUTSIDE_DATA_DIRS = (
    "give the path of a file inside the server's data directory, relative to it "
    "(no absolute path, no '..', no '~')"
)

#: The data directories a request's paths are confined to; None outside a request (no confinement).
_REQUEST_DATA_DIRS: ContextVar[tuple[Path, ...] | None] = ContextVar(
    "prunelab_request_data_dirs", default=None
)


class PathOutsideDataDirs(ValueError):
    """A dataset path is absolute, climbs out with ``..``, starts with ``~`` or resolves outside the data
    directories. The message is always :data:`OUTSIDE_DATA_DIRS`."""

    def __init__(self) -> None:
        super().__init__(OUTSIDE_DATA_DIRS)


def default_data_dirs() -> list[Path]:
    """The directories searched for data files when a caller names none.

    Returns:
        ``$PRUNELAB_DATA_DIR`` (when set and not empty, ``~`` expanded), then ``~/.keras/datasets``.
    """
    dirs: list[Path] = []
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path(*KERAS_CACHE).expanduser())
    return dirs


def data_dirs(*first: Path | None) -> list[Path]:
    """The data directories in search order: ``first`` (None skipped), then :func:`default_data_dirs`.

    Args:
        *first: directories searched before the defaults, e.g. the service's ``settings.data_dir`` or
            ``prunelab run --data-dir``.

    Returns:
        The directories, ``~`` expanded, each once (the first occurrence keeps its place).
    """
    dirs = [Path(d).expanduser() for d in first if d is not None] + default_data_dirs()
    return list(dict.fromkeys(dirs))


def relative_parts(raw: str) -> PurePosixPath:
    """A request's dataset path as a relative path, checked without touching the file system.

    Args:
        raw: the path as the request wrote it.

    Returns:
        The path, e.g. ``PurePosixPath("mine/d.npz")``.

    Raises:
        PathOutsideDataDirs: it is empty, absolute (POSIX or Windows style), starts with ``~``, holds a
            ``..`` part, a backslash or a NUL character.
    """
    if not raw or "\x00" in raw or "\\" in raw or raw.startswith("~"):
        raise PathOutsideDataDirs()
    windows = PureWindowsPath(raw)
    path = PurePosixPath(raw)
    if path.is_absolute() or windows.drive or windows.root or ".." in path.parts or not path.parts:
        raise PathOutsideDataDirs()
    return path


def confine(raw: str, roots: Sequence[Path]) -> Path:
    """The file a request's dataset path names, resolved inside the data directories.

    Args:
        raw: the path as the request wrote it.
        roots: the data directories, in search order.

    Returns:
        The resolved path in the first directory that holds it as a file, else in the first directory
        (the file may not exist: the caller says so, naming ``raw``).

    Raises:
        PathOutsideDataDirs: :func:`relative_parts` refuses it, there is no data directory, or a symlink
            takes it outside the directory it resolved against.
    """
    relative = relative_parts(raw)
    inside: list[Path] = []
    for root in roots:
        try:
            base = Path(root).expanduser().resolve()
            candidate = (base / relative).resolve()
        except (OSError, RuntimeError):  # a symlink loop, an unreadable directory
            raise PathOutsideDataDirs() from None
        if not candidate.is_relative_to(base):
            raise PathOutsideDataDirs()
        if candidate.is_file():
            return candidate
        inside.append(candidate)
    if not inside:
        raise PathOutsideDataDirs()
    return inside[0]


def redact_dirs(text: str, roots: Sequence[Path]) -> str:
    """``text`` with every data directory (as given and resolved) written ``<data directory N>``.

    Args:
        text: a message or description that may name the directories, e.g. a dataset error.
        roots: the data directories, in search order (N counts from 1).

    Returns:
        The text, naming no directory of the server.
    """
    labels: dict[str, str] = {}
    for number, root in enumerate(roots, 1):
        for written in (Path(root).expanduser(), Path(root).expanduser().resolve()):
            labels.setdefault(str(written), f"<data directory {number}>")
    for directory in sorted(labels, key=len, reverse=True):  # /a/b/c before /a/b
        text = text.replace(directory, labels[directory])
    return text


@contextmanager
def confined_to(roots: Sequence[Path]) -> Iterator[None]:
    """Within the block (a request), dataset paths that specs name are confined to ``roots``.

    Args:
        roots: the service's data directories.
    """
    token = _REQUEST_DATA_DIRS.set(tuple(roots))
    try:
        yield
    finally:
        _REQUEST_DATA_DIRS.reset(token)


def check_request_path(raw: str) -> str:
    """A spec's dataset path, checked when a request names it (inside :func:`confined_to`).

    Args:
        raw: the path as written.

    Returns:
        ``raw`` unchanged (outside a request nothing is checked: ``prunelab run`` reads local files).

    Raises:
        PathOutsideDataDirs: inside a request, :func:`confine` refuses it.
    """
    roots = _REQUEST_DATA_DIRS.get()
    if roots is not None:
        confine(raw, roots)
    return raw
