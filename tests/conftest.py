"""Shared fixtures: a store, the Flask app (Flask-tutorial style), a live HTTP server, and the CLI runner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-write-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def store():
    """An in-memory store holding the shipped ontology."""
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    ensure_loaded(s, ontology_files())
    yield s
    s.close()


@pytest.fixture
def app_config(tmp_path):
    return {"MEMORY": True, "TESTING": True, "WRITE_TOKEN": TOKEN, "QUERY_TIMEOUT": 5.0, "RELOAD_INTERVAL": 0,
            "DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def app(app_config):
    from mfmkg.service import create_app

    return create_app(app_config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner():
    return CliRunner()


class LiveServer:
    """The app served by waitress on a free loopback port, in a thread of this process."""

    def __init__(self, app):
        from waitress import create_server

        self.server = create_server(app, host="127.0.0.1", port=0, threads=8)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        wait_until_up(self.url)

    def _loop(self):
        # waitress's own run() loops forever; stepping the loop lets close() stop it without a closed-fd race.
        from waitress import wasyncore

        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)
        self.server.task_dispatcher.shutdown()
        self.server.close()


def wait_until_up(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if requests.get(url + "/-/health", timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


@pytest.fixture
def live_server(app):
    srv = LiveServer(app)
    yield srv
    srv.close()


def start_serve(args: list[str], env: dict | None = None, cwd: Path | None = None):
    """Start ``mfmkg serve`` as its own process on a free port; returns (process, base URL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "mfmkg", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc=proc)
    except Exception:
        proc.kill()
        raise
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def serve_process(tmp_path_factory):
    """A real ``mfmkg serve --memory`` process for the whole module."""
    proc, url = start_serve(["--memory"], env={"MFMKG_WRITE_TOKEN": TOKEN,
                                               "MFMKG_DATA_DIR": str(tmp_path_factory.mktemp("d"))})
    yield url
    stop(proc)
