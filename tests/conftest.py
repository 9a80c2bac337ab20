"""Shared fixtures: a store, the Flask app (Flask-tutorial style), a live HTTP server, and the CLI runner.

Backends: ``store`` and ``app_config`` (so ``app``, ``client``, ``live_server``) run each test on the embedded
pyoxigraph store and on a remote store (``mfmkg.store.remote``) backed by an ``oxigraph serve`` process of the test
extra: a fresh in-memory server per test, on a free loopback port, stopped at teardown (which also ends any query
still running there). ``MFMKG_TEST_BACKENDS=embedded`` (or ``remote``) limits a run to one of them.
"""

from __future__ import annotations

import os
import shutil
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


BACKENDS = [b.strip() for b in os.environ.get("MFMKG_TEST_BACKENDS", "embedded,remote").split(",") if b.strip()]


def oxigraph_executable() -> str | None:
    """The ``oxigraph`` server CLI (PyPI package ``oxigraph``, in the test extra): next to this Python, or on PATH."""
    return shutil.which("oxigraph", path=str(Path(sys.executable).parent)) or shutil.which("oxigraph")


class OxigraphServer:
    """``oxigraph serve`` on a loopback port: the query default graph is the union of all graphs (as mfmkg
    expects, docs/remote-store.md) and queries stop after ``timeout_s``. ``location=None``: in memory.
    ``stop``/``start`` again keep the port, so a client can be shown the same server going away and coming back."""

    def __init__(self, location: Path | None, log: Path, timeout_s: int = 10, union: bool = True):
        exe = oxigraph_executable()
        if exe is None:
            pytest.skip("the oxigraph server CLI is not installed (pip install -e '.[test]')")
        self.exe, self.location, self.log, self.timeout_s, self.union = exe, location, log, timeout_s, union
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store_url = f"sparql+http://127.0.0.1:{self.port}/query"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 20.0) -> "OxigraphServer":
        cmd = [self.exe, "serve", "--bind", f"127.0.0.1:{self.port}", "--timeout-s", str(self.timeout_s)]
        if self.union:
            cmd.append("--union-default-graph")
        if self.location is not None:
            cmd += ["--location", str(self.location)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oxigraph serve exited with {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(self.url + "/query", timeout=2).status_code == 200:  # its service description
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"oxigraph serve did not answer on {self.url} within {wait}s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(scope="session")
def oxigraph_process(tmp_path_factory):
    """One persistent ``oxigraph serve`` for the session (the object, to stop and restart it)."""
    root = tmp_path_factory.mktemp("oxigraph")
    server = OxigraphServer(root / "data", root / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oxigraph_server(oxigraph_process) -> str:
    """The base URL of the session's ``oxigraph serve`` (its query endpoint is ``/query``)."""
    return oxigraph_process.url


@pytest.fixture
def oxigraph_factory(tmp_path):
    """Start private ``oxigraph serve`` processes (in memory unless ``persistent``); all stopped at teardown."""
    servers = []

    def start(persistent: bool = False, timeout_s: int = 10, union: bool = True) -> OxigraphServer:
        n = len(servers)
        server = OxigraphServer(tmp_path / f"oxigraph-{n}" if persistent else None,
                                tmp_path / f"oxigraph-{n}.log", timeout_s, union)
        servers.append(server)  # before start: a server that fails to come up is still stopped
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def module_store_config(request, tmp_path_factory):
    """For module-scoped apps: configuration keys that put the app on this module run's backend ({} for the
    embedded store; STORE for a fresh ``oxigraph serve`` that lives as long as the module's fixtures). Usage:
    ``create_app({"MEMORY": True, ..., **module_store_config})``."""
    if request.param != "remote":
        yield {}
        return
    root = tmp_path_factory.mktemp("oxigraph-module")
    server = OxigraphServer(None, root / "server.log").start()
    yield {"STORE": server.store_url}
    server.stop()


@pytest.fixture(params=BACKENDS)
def store_backend(request) -> str:
    """The backend a test runs on: "embedded" or "remote" (one test id suffix each)."""
    return request.param


@pytest.fixture
def backend(store_backend, request):
    """A ready store on this test's backend, holding the shipped ontology; remote: its own fresh server."""
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store import open_store

    if store_backend == "remote":
        server = request.getfixturevalue("oxigraph_factory")()
        s = open_store({"STORE": server.store_url, "QUERY_TIMEOUT": 10.0})
        s.server = server
    else:
        s = open_store({"MEMORY": True})
    ensure_loaded(s, ontology_files())
    yield s
    s.close()


@pytest.fixture
def store(backend):
    """A store holding the shipped ontology, on each backend in turn."""
    return backend


@pytest.fixture
def app_config(tmp_path, store_backend, request):
    cfg = {"MEMORY": True, "TESTING": True, "WRITE_TOKEN": TOKEN, "QUERY_TIMEOUT": 5.0, "RELOAD_INTERVAL": 0,
           "DATA_DIR": str(tmp_path / "data")}
    if store_backend == "remote":
        cfg["STORE"] = request.getfixturevalue("oxigraph_factory")().store_url
    return cfg


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
