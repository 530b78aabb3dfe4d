"""The data directories and the confinement of a request's dataset path (prunespec.datapaths)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prunespec.datapaths import (
    OUTSIDE_DATA_DIRS,
    PathOutsideDataDirs,
    check_request_path,
    confine,
    confined_to,
    data_dirs,
    default_data_dirs,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two data directories and a secret directory beside them, each with an .npz file."""
    first, second, secret = tmp_path / "first", tmp_path / "second", tmp_path / "secret"
    for directory in (first, second, secret):
        directory.mkdir()
    (second / "mine").mkdir()
    (second / "mine" / "d.npz").write_bytes(b"data")
    (secret / "s.npz").write_bytes(b"secret")
    return first, second, secret


def test_a_relative_path_resolves_in_the_first_data_directory_holding_it(
    roots: tuple[Path, Path, Path],
) -> None:
    first, second, _ = roots
    assert confine("mine/d.npz", [first, second]) == (second / "mine" / "d.npz").resolve()
    assert confine("./mine/d.npz", [first, second]) == (second / "mine" / "d.npz").resolve()
    assert confine("missing.npz", [first, second]) == (first / "missing.npz").resolve()


@pytest.mark.parametrize(
    "raw",
    [
        "/etc/passwd",
        "../secret/s.npz",
        "mine/../../secret/s.npz",
        "~/s.npz",
        "~root/s.npz",
        "C:/data/s.npz",
        "..\\secret\\s.npz",
        "\\\\host\\share\\s.npz",
        "mine/d.npz\x00.txt",
        "",
        ".",
    ],
)
def test_paths_that_leave_the_data_directories_are_refused_with_one_message(
    roots: tuple[Path, Path, Path], raw: str
) -> None:
    first, second, _ = roots
    with pytest.raises(PathOutsideDataDirs) as refused:
        confine(raw, [first, second])
    assert str(refused.value) == OUTSIDE_DATA_DIRS


def test_an_absolute_path_is_refused_alike_whether_the_file_exists_or_not(
    roots: tuple[Path, Path, Path],
) -> None:
    first, second, secret = roots
    messages = set()
    for raw in (str(secret / "s.npz"), str(secret / "nothing.npz"), str(second / "mine" / "d.npz")):
        with pytest.raises(PathOutsideDataDirs) as refused:
            confine(raw, [first, second])
        messages.add(str(refused.value))
    assert messages == {OUTSIDE_DATA_DIRS}
    assert str(secret) not in OUTSIDE_DATA_DIRS


def test_a_symlink_out_of_a_data_directory_is_refused(roots: tuple[Path, Path, Path]) -> None:
    first, second, secret = roots
    (second / "link.npz").symlink_to(secret / "s.npz")
    (second / "dangling.npz").symlink_to(secret / "nothing.npz")
    (second / "outside").symlink_to(secret, target_is_directory=True)
    (second / "inside.npz").symlink_to(second / "mine" / "d.npz")
    for raw in ("link.npz", "dangling.npz", "outside/s.npz", "outside/nothing.npz"):
        with pytest.raises(PathOutsideDataDirs, match="no absolute path"):
            confine(raw, [first, second])
    assert confine("inside.npz", [first, second]) == (second / "mine" / "d.npz").resolve()


def test_no_data_directory_confines_everything_out(tmp_path: Path) -> None:
    with pytest.raises(PathOutsideDataDirs):
        confine("d.npz", [])


def test_request_paths_are_checked_only_inside_a_request(roots: tuple[Path, Path, Path]) -> None:
    first, second, secret = roots
    outside = str(secret / "s.npz")
    assert check_request_path(outside) == outside  # prunelab run: the user's own files
    with confined_to([first, second]):
        assert check_request_path("mine/d.npz") == "mine/d.npz"
        with pytest.raises(PathOutsideDataDirs):
            check_request_path(outside)
    assert check_request_path(outside) == outside


def test_data_dirs_put_the_given_directories_first_then_the_environment_then_keras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    keras = tmp_path / "home" / ".keras" / "datasets"
    monkeypatch.delenv("PRUNELAB_DATA_DIR", raising=False)
    assert default_data_dirs() == [keras]
    monkeypatch.setenv("PRUNELAB_DATA_DIR", "~/lab")
    assert default_data_dirs() == [tmp_path / "home" / "lab", keras]
    assert data_dirs(tmp_path / "service", None, Path("~/lab")) == [
        tmp_path / "service",
        tmp_path / "home" / "lab",
        keras,
    ]


def test_the_web_side_can_confine_paths_without_numpy_or_tensorflow() -> None:
    code = (
        "import sys, prunespec.datapaths, prunespec.spec;"
        "print(sorted(m for m in ('numpy', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
