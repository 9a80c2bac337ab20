"""Faults: a load killed with SIGKILL, a read-only data directory, a full disk, a remote server killed mid-load.

Each case runs the real ``mfmkg`` command in its own process on an on-disk store under ``tmp_path`` and then
reopens the store: it must open, hold what it held before, and hold an interrupted source either whole or not at
all. The read-only and full-disk cases need real conditions (tests run as root, where ``chmod`` stops nothing): a
read-only bind mount (else ``chattr +i``) and a small tmpfs; they are skipped, with the reason, only where none of
these can be set up. The remote case kills ``oxigraph serve`` (kill -9) in the middle of a batched load, answers
503 while it is down, and works again once it is back. Sizes are small (8,000 entries, a few seconds per load) so
that the whole module runs in about a minute on an idle machine; a kill point is "while the source streams into
its transaction" (seen from outside by the writer thread's name) or a fraction of a clean load's CPU time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import REPO, start_serve, stop

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load_throughput import write_bibtex, write_jsonl  # noqa: E402

from mfmkg.namespaces import META_GRAPH, source_graph  # noqa: E402

BIG_ENTRIES = 8_000
SMALL = REPO / "tests" / "data" / "literature" / "sample.jsonl"
STAGING = "https://w3id.org/mfmkg/graph/staging/"
ENV = {**os.environ, "MFMKG_RELOAD_INTERVAL": "0"}


def mfmkg(*args: str, timeout: float = 300, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfmkg", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**ENV, **(env or {})}, **kwargs)


def start_load(*args: str, env: dict | None = None, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mfmkg", "load", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=stderr, text=True, env={**ENV, **(env or {})})


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a running process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writing(pid: int) -> bool:
    """Whether the process is streaming a source into its store transaction: its graph writer thread, named
    ``mfmkg-write`` (mfmkg.store.base), lives from the first chunk until the transaction has committed."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as fh:
                if fh.read().strip() == "mfmkg-write":
                    return True
        except FileNotFoundError:
            pass
    return False


def kill_at(proc: subprocess.Popen, point) -> bool:
    """SIGKILL ``proc`` at ``point``: a number is CPU seconds used (unlike wall time, this does not depend on what
    else the machine runs); ``("streaming", cpu)``: once its graph writer has streamed for ``cpu`` CPU seconds,
    so surely before the commit. False when the process ended first."""
    started = None
    while proc.poll() is None:
        try:
            used = cpu_seconds(proc.pid)
            if isinstance(point, tuple):
                if started is None and writing(proc.pid):
                    started = used
                due = started is not None and used - started >= point[1] and writing(proc.pid)
            else:
                due = used >= point
            if due:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=60)
                return True
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.005)
    proc.communicate(timeout=60)
    return False


def store_stats(data_dir: Path) -> dict[str, int]:
    """Triples per graph of the store in ``data_dir``, opened in a fresh process (as a user would reopen it)."""
    code = ("import json, sys\nfrom mfmkg.store.embedded import EmbeddedStore\n"
            "s = EmbeddedStore(sys.argv[1])\nprint(json.dumps(s.stats()))\ns.close()\n")
    out = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"the store at {data_dir} does not open:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def content(stats: dict[str, int]) -> dict[str, int]:
    """The graphs that hold data (bookkeeping in the meta graph left out)."""
    return {g: n for g, n in stats.items() if g not in ("default", META_GRAPH) and n}


def assert_clean_failure(proc, *words: str, stderr: str | None = None) -> None:
    stderr = proc.stderr if stderr is None else stderr
    assert proc.returncode == 1, (proc.returncode, getattr(proc, "stdout", ""), stderr)
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith("error: ") or "\nerror: " in stderr, stderr
    if words:
        assert any(w in stderr.lower() for w in words), stderr


# -- fixtures -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    jsonl, bib = d / "big.jsonl", d / "big.bib"
    write_jsonl(jsonl, BIG_ENTRIES)
    write_bibtex(bib, BIG_ENTRIES)
    return {"jsonl": jsonl, "bibtex": bib}


@pytest.fixture(scope="module")
def base_store(tmp_path_factory):
    """An on-disk store holding the ontology and the small sample source, closed: copied by each test."""
    data = tmp_path_factory.mktemp("base") / "data"
    proc = mfmkg("load", "--data-dir", str(data), "--source", "small", str(SMALL))
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture(scope="module")
def clean_load(big_files, base_store, tmp_path_factory):
    """(CPU seconds the whole ``mfmkg load`` of the JSONL file used, store stats after it, bytes the store grew).
    The BibTeX file holds the same papers, so a clean load of it gives the same number of triples."""
    data = tmp_path_factory.mktemp("clean") / "data"
    shutil.copytree(base_store, data)
    log = data.parent / "stderr.txt"
    with open(log, "w") as err:
        proc = start_load("--data-dir", str(data), "--source", "big", str(big_files["jsonl"]), stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = usage.ru_utime + usage.ru_stime
    assert proc.returncode == 0, log.read_text()
    stats = store_stats(data)
    assert stats[source_graph("big")] > 10 * BIG_ENTRIES
    return seconds, stats, _du(data) - _du(base_store)


# -- (a) kill -9 during a large load ---------------------------------------------------------------------------

#: Where to kill: while the source streams into its transaction (after that many CPU seconds of streaming), or
#: at a fraction of a clean load's CPU time (about the first 35% is start-up: imports, the ontology check; the
#: source streams until about 50%; the rest is the commit and RocksDB's flush when the store is closed).
KILL_POINTS = {"jsonl": [("streaming", 0.05), ("streaming", 0.3), 0.8], "bibtex": [("streaming", 0.05), ("streaming", 0.2)]}


@pytest.mark.parametrize("fmt", ["jsonl", "bibtex"])
def test_killed_load_leaves_the_source_whole_or_absent(fmt, big_files, base_store, clean_load, tmp_path):
    """SIGKILL at points of a load into an on-disk store (while it streams, or at a fraction of a clean load's CPU
    time); then reopen it, as the next command or server would. Every kill point is tried (and reported) before
    the assertions."""
    seconds, clean, _ = clean_load
    before = content(store_stats(base_store))
    graph = source_graph("big")
    seen, failures = [], []
    for i, frac in enumerate(KILL_POINTS[fmt]):
        data = tmp_path / f"kill-{i}"
        shutil.copytree(base_store, data)
        proc = start_load("--data-dir", str(data), "--source", "big", str(big_files[fmt]))
        finished = not kill_at(proc, frac if isinstance(frac, tuple) else frac * seconds)

        # reopen: the store opens (store_stats asserts it), the other sources are intact, and the interrupted
        # one is whole or absent -- to every reader, so also in the union of all graphs that queries see
        after = content(store_stats(data))
        got = after.get(graph, 0)
        state = "complete" if got == clean[graph] else "absent" if got == 0 else f"PARTIAL ({got} triples)"
        seen.append((frac, "finished" if finished else "killed", state))
        if got not in (0, clean[graph]):
            failures.append(f"kill at {frac}: partial source, {got} of {clean[graph]} triples")
        if isinstance(frac, tuple) and not finished and got:
            failures.append(f"kill at {frac}: killed while streaming, yet {got} triples were stored")
        staging = [g for g in after if g.startswith(STAGING)]
        if staging:
            failures.append(f"kill at {frac}: staging graph visible: {staging}")
        others = {g: n for g, n in after.items() if g != graph}
        if others != before:
            failures.append(f"kill at {frac}: other graphs changed: {others} != {before}")

        # the CLI lists only whole sources; and the next load of the same file completes the source
        listed = mfmkg("sources", "--data-dir", str(data), "--format", "json")
        assert listed.returncode == 0, listed.stderr
        names = {s["name"] for s in json.loads(listed.stdout)}
        if names != ({"small", "big"} if got == clean[graph] else {"small"}):
            failures.append(f"kill at {frac}: `mfmkg sources` lists {sorted(names)}")
        if fmt == "jsonl" and frac == KILL_POINTS[fmt][-1]:
            again = mfmkg("load", "--data-dir", str(data), "--source", "big", str(big_files[fmt]))
            assert again.returncode == 0, again.stderr
            assert content(store_stats(data)) == content(clean), (frac, "the reload after the kill is not clean")
        shutil.rmtree(data)
    print(f"\n{fmt}: kill points (a clean load took {seconds:.1f} CPU s) and outcomes: {seen}")
    streamed = [kind for point, kind, _ in seen if isinstance(point, tuple)]
    assert "killed" in streamed, f"no kill point hit the load while it streamed: {seen}"
    assert not failures, failures


def test_killed_reload_of_a_loaded_source_keeps_the_old_version(big_files, base_store, clean_load, tmp_path):
    """A source loaded before and loaded again from a changed file is streamed into a staging transaction, which
    one update then swaps in (DROP + MOVE). Killed while it streams, the reopened store holds the old version and
    no staging data (queries see the union of all graphs, so a staging graph would be visible data). Killed late
    (possibly during the swap, which on disk takes seconds) it holds the old or the new version, and a staging
    graph committed just before the kill is dropped by the next load's start."""
    seconds, clean, _ = clean_load
    graph = source_graph("big")
    v1 = tmp_path / "v1.jsonl"
    with open(big_files["jsonl"], encoding="utf-8") as src, open(v1, "w", encoding="utf-8") as dst:
        for _, line in zip(range(1000), src):
            dst.write(line)
    base = tmp_path / "v1-store"
    shutil.copytree(base_store, base)
    first = mfmkg("load", "--data-dir", str(base), "--source", "big", str(v1))
    assert first.returncode == 0, first.stderr
    old = content(store_stats(base))
    outcomes = []
    for i, point in enumerate([("streaming", 0.1), 1.0 * seconds]):
        data = tmp_path / f"kill-{i}"
        for _attempt in range(3):  # on a busy machine the poller may miss the stream: then try again
            shutil.copytree(base, data, dirs_exist_ok=True)
            proc = start_load("--data-dir", str(data), "--source", "big", str(big_files["jsonl"]))
            killed = kill_at(proc, point)
            if killed or not isinstance(point, tuple):
                break
            shutil.rmtree(data)
        after = content(store_stats(data))
        staging = {g: n for g, n in after.items() if g.startswith(STAGING)}
        outcomes.append((point, "killed" if killed else "finished", after.get(graph), bool(staging)))
        assert after.get(graph) in (old[graph], clean[graph]), (point, after.get(graph), old[graph], clean[graph])
        if isinstance(point, tuple):
            assert killed, "the reload ended before the kill: nothing was tested"
            assert after.get(graph) == old[graph] and not staging, (
                f"a reload killed while streaming left {after.get(graph)} triples, staging data {staging}")
        other = mfmkg("load", "--data-dir", str(data), "--source", "small", str(SMALL))
        assert other.returncode == 0, other.stderr
        left = [g for g in content(store_stats(data)) if g.startswith(STAGING)]
        assert not left, f"the next load did not drop the staging graph of the killed one: {left}"
        shutil.rmtree(data)
    print(f"\nreload kill points (a clean load took {seconds:.1f} CPU s): {outcomes}")


# -- (b) read-only data directory ------------------------------------------------------------------------------

def _run(*cmd: str) -> bool:
    return subprocess.run(list(cmd), capture_output=True).returncode == 0


def _really_read_only(path: Path) -> bool:
    probe = path / ".write-probe"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return True
    probe.unlink()
    return False


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` really read-only, also for root: a read-only bind mount onto itself, else the immutable
    attribute on the directory and its files; yields how. Skips the test when neither works."""
    tried = []
    if shutil.which("mount") and _run("mount", "--bind", str(path), str(path)):
        try:
            if _run("mount", "-o", "remount,bind,ro", str(path), str(path)) and _really_read_only(path):
                yield "read-only bind mount"
                return
            tried.append("read-only bind mount (remount failed)")
        finally:
            if not _run("umount", str(path)):
                _run("umount", "-l", str(path))
    else:
        tried.append("bind mount (not permitted)")
    if shutil.which("chattr"):
        files = [str(p) for p in path.rglob("*")] + [str(path)]
        if _run("chattr", "+i", *files):
            try:
                if _really_read_only(path):
                    yield "chattr +i"
                    return
                tried.append("chattr +i (writes still possible)")
            finally:
                _run("chattr", "-i", *files)
        else:
            tried.append("chattr +i (not supported here)")
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        os.chmod(path, 0o500)
        try:
            if _really_read_only(path):
                yield "chmod 0500"
                return
        finally:
            os.chmod(path, mode)
    pytest.skip("no way to make a directory read-only here; tried: " + "; ".join(tried))


@pytest.mark.parametrize("command", ["load", "serve", "unload"])
def test_read_only_data_dir_is_a_clear_error(command, base_store, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(base_store, data)
    before = content(store_stats(data))
    with read_only(data) as how:
        if command == "load":
            proc = mfmkg("load", "--data-dir", str(data), "--source", "more", str(SMALL), timeout=120)
        elif command == "unload":
            proc = mfmkg("unload", "--data-dir", str(data), "small", timeout=120)
        else:
            proc = mfmkg("serve", "--data-dir", str(data), "--port", "0", timeout=120)
        assert_clean_failure(proc, "not writable", "read-only", "permission", "not permitted")
        assert str(data) in proc.stderr, proc.stderr
    assert content(store_stats(data)) == before, how


# -- (b) full disk ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(path: Path, size_bytes: int):
    path.mkdir()
    if not (shutil.which("mount") and _run("mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path))):
        pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN): no way to fill a disk safely")
    try:
        yield path
    finally:
        if not _run("umount", str(path)):
            _run("umount", "-l", str(path))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize("room", ["6MiB", "half"], ids=["full-at-once", "full-mid-write"])
def test_full_disk_during_a_load(room, base_store, big_files, clean_load, tmp_path):
    """A load that fills the disk fails with a clear message and exit 1; the store opens afterwards with its old
    content and without a part of the new source. With 6 MiB free the write fails at once; with half the room a
    clean load takes, the store has written part of the source's transaction when the disk fills. Once space is
    freed the same load succeeds."""
    growth = clean_load[2]
    room_bytes = 6 * 1024 * 1024 if room == "6MiB" else growth // 2
    with small_tmpfs(tmp_path / "disk", _du(base_store) + room_bytes) as disk:
        data = disk / "data"
        shutil.copytree(base_store, data)
        before = content(store_stats(data))
        proc = mfmkg("load", "--data-dir", str(data), "--source", "big", str(big_files["jsonl"]))
        assert_clean_failure(proc, "no space", "space left", "disk full", "not enough space")
        # a command that only reads, on the still full disk: either works or fails cleanly
        listed = mfmkg("sources", "--data-dir", str(data), "--format", "json")
        if listed.returncode != 0:
            assert_clean_failure(listed)
        else:
            assert {s["name"] for s in json.loads(listed.stdout)} == {"small"}
        # (opening may itself need room, for the log it replays: then only the clean error above is asked for)
        states = [content(store_stats(data))] if listed.returncode == 0 else []
        assert _run("mount", "-o", f"remount,size={4 * 1024 ** 3}", str(disk)), "cannot grow the tmpfs"
        states.append(content(store_stats(data)))  # reopened once space is free again
        for state in states:
            assert {g: n for g, n in state.items() if g != source_graph("big")} == before
            assert state.get(source_graph("big"), 0) == 0, (
                f"a failed load left {state[source_graph('big')]} triples of source 'big' in the store")
        if room == "half":
            again = mfmkg("load", "--data-dir", str(data), "--source", "big", str(big_files["jsonl"]))
            assert again.returncode == 0, again.stderr
            assert store_stats(data)[source_graph("big")] == clean_load[1][source_graph("big")]


# -- (c) a remote server killed in the middle of a load --------------------------------------------------------

def _staging_on(server) -> list[str]:
    q = "SELECT DISTINCT ?g WHERE { GRAPH ?g { } FILTER(CONTAINS(STR(?g), '/graph/staging/')) }"
    try:
        resp = requests.post(server.url + "/query", data={"query": q}, timeout=5,
                             headers={"Accept": "application/sparql-results+json"})
    except requests.ConnectionError:
        return []
    return [b["g"]["value"] for b in resp.json()["results"]["bindings"]] if resp.ok else []


def test_remote_server_killed_mid_load_then_restarted(oxigraph_factory, big_files, clean_load, tmp_path):
    """``mfmkg load --store`` sends batches to a staging graph; the server is killed (kill -9) after the first
    batches. The load fails cleanly; while the server is down ``mfmkg serve --store`` answers 503 problems; once
    the server is back (same port and data) the service works again without a restart, the source is absent
    (never partial), and when the dead load's lease has run out the next load drops its staging graph and
    completes the source."""
    server = oxigraph_factory(persistent=True)
    url = server.store_url
    env = {"MFMKG_STORE_BATCH": "10000", "MFMKG_STORE_LEASE": "3"}
    seeded = mfmkg("load", "--store", url, "--source", "small", str(SMALL), env=env)
    assert seeded.returncode == 0, seeded.stderr
    proc, service = start_serve(["--store", url], env={"MFMKG_RELOAD_INTERVAL": "0"})
    try:
        sparql = {"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"}
        assert requests.get(service + "/sparql", params=sparql, timeout=30).status_code == 200

        load = start_load("--store", url, "--source", "big", str(big_files["jsonl"]), env=env)
        deadline = time.monotonic() + 120
        while not _staging_on(server) and load.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert load.poll() is None, "the load ended before its first batch was seen: nothing was tested"
        server.proc.send_signal(signal.SIGKILL)  # the server dies mid-load: batches are on its disk
        server.proc.wait(timeout=30)
        server.proc = None
        _, stderr = load.communicate(timeout=120)
        assert_clean_failure(load, f"127.0.0.1:{server.port}", stderr=stderr)

        down = requests.get(service + "/sparql", params=sparql, timeout=30)
        assert down.status_code == 503 and down.headers["Content-Type"].startswith("application/problem+json")
        assert down.json()["title"] == "Store unavailable" and f"127.0.0.1:{server.port}" in down.json()["detail"]

        server.start()  # same port, same data
        assert requests.get(service + "/sparql", params=sparql, timeout=30).status_code == 200
        listed = mfmkg("sources", "--store", url, "--format", "json")
        assert listed.returncode == 0 and {s["name"] for s in json.loads(listed.stdout)} == {"small"}, listed
        left = _staging_on(server)  # the dead load's staging graph, kept while its lease runs
        assert left and all(g.startswith(STAGING) for g in left)

        time.sleep(3.5)  # the lease (MFMKG_STORE_LEASE=3 s) runs out: the next load drops the staging graph
        again = mfmkg("load", "--store", url, "--source", "big", str(big_files["jsonl"]), env=env)
        assert again.returncode == 0, again.stderr
        assert not _staging_on(server)
        listed = mfmkg("sources", "--store", url, "--format", "json")
        rows = {s["name"]: s for s in json.loads(listed.stdout)}
        assert rows["big"]["triples"] == clean_load[1][source_graph("big")]
    finally:
        stop(proc)
