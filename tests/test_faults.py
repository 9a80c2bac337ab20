"""Faults: a load killed with SIGKILL, a read-only data directory, a full disk.

Each case runs the real ``mfmkg`` command in its own process on an on-disk store under ``tmp_path`` and then
reopens the store: it must open, hold what it held before, and hold an interrupted source either whole or not at
all. The read-only and full-disk cases need real conditions (tests run as root, where ``chmod`` stops nothing): a
read-only bind mount (else ``chattr +i``) and a small tmpfs; they are skipped, with the reason, only where none of
these can be set up. (A remote store going down mid-session is covered with the remote store's own tests.)
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

from conftest import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.load_throughput import write_bibtex, write_jsonl  # noqa: E402

from mfmkg.namespaces import META_GRAPH, source_graph  # noqa: E402

BIG_ENTRIES = 50_000
SMALL = REPO / "tests" / "data" / "literature" / "sample.jsonl"
STAGING = "https://w3id.org/mfmkg/graph/staging/"


def mfmkg(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfmkg", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, "MFMKG_RELOAD_INTERVAL": "0"}, **kwargs)


def store_stats(data_dir: Path) -> dict[str, int]:
    """Triples per graph of the store in ``data_dir``, opened in a fresh process (as a user would reopen it)."""
    code = ("import json, sys\nfrom mfmkg.store.embedded import EmbeddedStore\n"
            "s = EmbeddedStore(sys.argv[1])\nprint(json.dumps(s.stats()))\ns.close()\n")
    out = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"the store at {data_dir} does not open:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def content(stats: dict[str, int]) -> dict[str, int]:
    """The graphs that hold data (bookkeeping in the meta graph left out: it may hold a loading marker)."""
    return {g: n for g, n in stats.items() if g not in ("default", META_GRAPH) and n}


def assert_clean_failure(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") or "\nerror: " in proc.stderr, proc.stderr
    if words:
        assert any(w in proc.stderr.lower() for w in words), proc.stderr


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
def clean_loads(big_files, base_store, tmp_path_factory):
    """Per format: (seconds the whole ``mfmkg load`` took, stats of the store after a clean load)."""
    out = {}
    for fmt, path in big_files.items():
        data = tmp_path_factory.mktemp(f"clean-{fmt}") / "data"
        shutil.copytree(base_store, data)
        started = time.monotonic()
        proc = mfmkg("load", "--data-dir", str(data), "--source", "big", str(path))
        seconds = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        stats = store_stats(data)
        assert stats[source_graph("big")] > 10 * BIG_ENTRIES
        out[fmt] = (seconds, stats)
    return out


# -- (a) kill -9 during a large load ---------------------------------------------------------------------------

KILL_POINTS = {"jsonl": [0.25, 0.45, 0.65, 0.85], "bibtex": [0.5]}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "bibtex"])
def test_killed_load_leaves_the_source_whole_or_absent(fmt, big_files, base_store, clean_loads, tmp_path):
    """SIGKILL at several points of a 50k-entry load into an on-disk store; then reopen it, as the next command
    or server would. Every kill point is tried (and reported) before the assertions."""
    seconds, clean = clean_loads[fmt]
    before = content(store_stats(base_store))
    graph = source_graph("big")
    seen, failures, reloaded = [], [], False
    for frac in KILL_POINTS[fmt]:
        data = tmp_path / f"kill-{frac}"
        shutil.copytree(base_store, data)
        proc = subprocess.Popen([sys.executable, "-m", "mfmkg", "load", "--data-dir", str(data), "--source", "big",
                                 str(big_files[fmt])], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "MFMKG_RELOAD_INTERVAL": "0"})
        try:
            proc.wait(timeout=frac * seconds)
            finished = True
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            finished = False
        proc.wait(timeout=60)

        # reopen: the store opens (store_stats asserts it), the other sources are intact, and the interrupted
        # one is whole or absent -- to every reader, so also in the union of all graphs that queries see
        after = content(store_stats(data))
        got = after.get(graph, 0)
        state = "complete" if got == clean[graph] else "absent" if got == 0 else f"PARTIAL ({got} triples)"
        seen.append((frac, "finished" if finished else "killed", state))
        if got not in (0, clean[graph]):
            failures.append(f"kill at {frac:.0%}: partial source, {got} of {clean[graph]} triples")
        staging = [g for g in after if g.startswith(STAGING)]
        if staging:
            failures.append(f"kill at {frac:.0%}: staging graph visible: {staging}")
        others = {g: n for g, n in after.items() if g != graph and not g.startswith(STAGING)}
        if others != before:
            failures.append(f"kill at {frac:.0%}: other graphs changed: {others} != {before}")

        # the CLI lists only whole sources; and (once, it takes a whole load) the next load of the same file
        # completes the source, whatever the kill left
        listed = mfmkg("sources", "--data-dir", str(data), "--format", "json")
        assert listed.returncode == 0, listed.stderr
        names = {s["name"] for s in json.loads(listed.stdout)}
        if names != ({"small", "big"} if got == clean[graph] else {"small"}):
            failures.append(f"kill at {frac:.0%}: `mfmkg sources` lists {sorted(names)}")
        if not reloaded and (0 < got < clean[graph] or frac == KILL_POINTS[fmt][-1]):
            again = mfmkg("load", "--data-dir", str(data), "--source", "big", str(big_files[fmt]))
            assert again.returncode == 0, again.stderr
            assert content(store_stats(data)) == content(clean), (frac, "the reload after the kill is not clean")
            reloaded = True
        shutil.rmtree(data)
    print(f"\n{fmt}: kill points (fraction of a clean load's {seconds:.1f} s) and outcomes: {seen}")
    assert any(kind == "killed" for _, kind, _ in seen), "no kill point hit the load while it ran"
    assert not failures, failures


@pytest.mark.slow
def test_killed_reload_of_a_loaded_source_keeps_the_old_version(big_files, base_store, clean_loads, tmp_path):
    """A source loaded before and loaded again from a changed file is written to a staging graph and swapped in
    at the end: killed half-way, the reopened store holds the old version, or the new one, and no staging data
    (queries see the union of all graphs, so a staging graph left behind is visible data)."""
    _, clean = clean_loads["jsonl"]
    graph = source_graph("big")
    v1 = tmp_path / "v1.jsonl"
    with open(big_files["jsonl"], encoding="utf-8") as src, open(v1, "w", encoding="utf-8") as dst:
        for _, line in zip(range(2000), src):
            dst.write(line)
    data = tmp_path / "data"
    shutil.copytree(base_store, data)
    first = mfmkg("load", "--data-dir", str(data), "--source", "big", str(v1))
    assert first.returncode == 0, first.stderr
    old = content(store_stats(data))
    start_size = _du(data)
    proc = subprocess.Popen([sys.executable, "-m", "mfmkg", "load", "--data-dir", str(data), "--source", "big",
                             str(big_files["jsonl"])], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MFMKG_RELOAD_INTERVAL": "0"})
    # kill right after the first chunk was committed: its write-ahead log (far more than 50 MB) has been written
    # and the directory has stopped growing (the next chunk is still being parsed). The directory first shrinks
    # as the store tidies up on opening, so growth is measured from its smallest size.
    deadline = time.monotonic() + 600
    low = start_size
    while proc.poll() is None and time.monotonic() < deadline:
        size = _du(data)
        low = min(low, size)
        if size - low > 50 * 1024 * 1024:
            previous = -1
            while proc.poll() is None and size != previous and time.monotonic() < deadline:
                previous = size
                time.sleep(0.5)
                size = _du(data)
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert killed, "the reload ended before a chunk was written: nothing was tested"
    after = content(store_stats(data))
    assert after.get(graph) in (old[graph], clean[graph]), (after.get(graph), old[graph], clean[graph])
    staging = {g: n for g, n in after.items() if g.startswith(STAGING)}
    assert not staging, f"a killed reload left staging data that every query sees: {staging}"


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


@pytest.mark.parametrize("room_mib", [6, 300], ids=["full-at-first-write", "full-mid-load"])
def test_full_disk_during_a_load(room_mib, base_store, big_files, tmp_path):
    """A load that fills the disk fails with a clear message and exit 1; the store opens afterwards with its old
    content and without a part of the new source, and once space is freed the same load succeeds. With 6 MiB
    free the first write fails; with 300 MiB the first chunk of 20,000 entries is stored and a later one fails."""
    size = _du(base_store) + room_mib * 1024 * 1024
    with small_tmpfs(tmp_path / "disk", size) as disk:
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
        again = mfmkg("load", "--data-dir", str(data), "--source", "big", str(big_files["jsonl"]))
        assert again.returncode == 0, again.stderr
        assert store_stats(data)[source_graph("big")] > 10 * BIG_ENTRIES
