"""The newcomer's path through the command line: db upgrade, serve (embedded), submit --follow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PRUNELAB = [sys.executable, "-m", "backend.cli"]

TINY_SPEC = """\
name: cli newcomer
model:
  input_shape: [2]
  layers:
    - {type: dense, name: hidden, units: 16, activation: relu}
    - {type: dense, name: out, units: 1}
dataset: {name: sum, train_samples: 2000, test_samples: 500}
training: {optimizer: adam, learning_rate: 0.01, batch_size: 200, epochs: 1, loss: mse}
pruning: {criterion: {type: apoz, k: 0}, max_cycles: 2}
"""


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNELAB_")}
    env.update({"PRUNELAB_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "3"})
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state != "Z"


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [*PRUNELAB, "serve", "--no-worker"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "prunelab db upgrade" in result.stderr


def test_upgrade_serve_submit_follow(tmp_path: Path) -> None:
    # authentication off (loopback): this test follows the CLI's submit path, which sends no token yet
    env = {**_env(tmp_path), "PRUNELAB_AUTH": "off"}
    upgrade = subprocess.run(
        [*PRUNELAB, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgrade.returncode == 0, upgrade.stderr
    port = _free_port()
    server = subprocess.Popen(
        [*PRUNELAB, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("the server did not become healthy within 60 s")
        workers = _children(server.pid)
        assert workers, "serve with the embedded default starts a worker process"

        spec = tmp_path / "tiny.yaml"
        spec.write_text(TINY_SPEC)
        follow = subprocess.run(
            [*PRUNELAB, "submit", str(spec), "--server", url, "--follow", "--tag", "cli"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert follow.returncode == 0, follow.stdout + follow.stderr
        assert "status running" in follow.stdout and "status succeeded" in follow.stdout
        assert "cycle 1 epoch 1" in follow.stdout
        assert "/experiments/1\n" in follow.stdout  # the dashboard page, not the API URL
        assert "stopped: " in follow.stdout and "kept model: cycle " in follow.stdout

        listing = httpx.get(f"{url}/api/experiments", params={"tag": "cli"}).json()
        assert listing["total"] == 1
        experiment = httpx.get(f"{url}/api/experiments/{listing['items'][0]['id']}").json()
        assert experiment["status"] == "succeeded"
        assert [c["index"] for c in experiment["cycles"]] == [0, 1]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in workers), "the embedded worker outlived the API"


def _start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PRUNELAB, "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_on_a_fresh_directory_prints_a_one_time_signin_link(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([*PRUNELAB, "db", "upgrade"], env=env, capture_output=True, timeout=60, check=True)
    port = _free_port()
    server = _start(env, port)
    try:
        assert server.stdout is not None
        link = ""
        deadline = time.monotonic() + 60
        while not link and time.monotonic() < deadline:
            line = server.stdout.readline()
            if "/signin?token=" in line:
                link = line.split("sign in (once) at ", 1)[1].strip()
        assert link.startswith(f"http://127.0.0.1:{port}/signin?token=")
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/api/experiments").status_code == 401
        with httpx.Client() as browser:
            signed_in = browser.get(link, follow_redirects=False)
            assert signed_in.status_code == 303
            assert browser.get(f"http://127.0.0.1:{port}/api/me").json()["name"] == "admin"
        with httpx.Client() as again:
            assert again.get(link, follow_redirects=False).headers["location"].startswith("/signin?next=")
            assert again.get(f"http://127.0.0.1:{port}/api/me").status_code == 401
        added = subprocess.run(
            [*PRUNELAB, "users", "add", "alice", "--role", "viewer"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip()
        me = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {"name": "alice", "role": "viewer", "via": "token"}
        listed = subprocess.run(
            [*PRUNELAB, "users", "list"], env=env, capture_output=True, text=True, timeout=60
        )
        assert "alice" in listed.stdout and "admin" in listed.stdout and token not in listed.stdout
        revoked = subprocess.run(
            [*PRUNELAB, "users", "revoke", "alice"], env=env, capture_output=True, timeout=60
        )
        assert revoked.returncode == 0
        me = httpx.get(f"http://127.0.0.1:{port}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_serve_refuses_authentication_off_beyond_loopback(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "PRUNELAB_AUTH": "off"}
    subprocess.run([*PRUNELAB, "db", "upgrade"], env=env, capture_output=True, timeout=60, check=True)
    result = subprocess.run(
        [*PRUNELAB, "serve", "--no-worker", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "authentication off" in result.stderr and "PRUNELAB_AUTH=off" in result.stderr
