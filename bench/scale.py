"""Scale: load throughput, gap-query latency and memory from 10k to 1M generated publications (docs/benchmarks.md).

    python -m bench.scale                                   # embedded 10k,100k, remote 10k,100k,300k,1M (~1 h)
    python -m bench.scale --backend remote --sizes 10000,100000
    python -m bench.scale --backend embedded --sizes 10000,100000
    python -m bench.scale --quick                           # 2k and 10k on both backends, a few minutes

For each backend and size, on an empty store holding only the shipped ontology:

* data: N publications generated as JSONL by ``bench.service_latency.write_jsonl`` (titles and abstracts made of
  the ontology's own threat keywords, a fifth tagged with a threat label), the same N-prefix at every size; past
  100k papers every paper has a DOI (arXiv numbers have five digits);
* ``remote``: a fresh ``oxigraph serve --location DIR --bind 127.0.0.1:PORT --union-default-graph`` per size (its
  data directory in the work directory), opened by mfmkg as ``--store sparql+http://127.0.0.1:PORT``;
  ``embedded``: mfmkg's on-disk store (``--data-dir``) in the work directory;
* **load** (a child process): ``mfmkg.loaders.pipeline.load_paths`` end to end (parse, validate, classify, build
  and write the source graph); entries/s and triples/s of that call, triples stored afterwards, the child's peak
  RSS (``getrusage``);
* **query** (a second child process, so the first call is that of a freshly started mfmkg): the named query
  ``gaps`` through mfmkg's API with its default arguments: the first call (``cache.cached_run_named``, a miss),
  then ``named_queries.run_named`` (every call evaluated: p50 of ``--reps``) in turns with the **baseline**, the
  same bound query text sent straight to the Oxigraph server's ``/query`` (remote) or asked of the bare
  pyoxigraph store (embedded), then repeated cached calls (p50); the child's peak RSS; both answers must have
  the same rows;
* the Oxigraph server's peak RSS (``VmHWM`` in ``/proc/PID/status``, load and queries together) and the size of
  the data directory on disk.

Prints one table, one row per backend and size; each main figure has a growth column, its ratio to the same
backend's smallest size in this run (a throughput that keeps up gives ~1.0; a latency linear in the data gives
the size ratio). ``mfmkg/base`` is mfmkg's evaluated gaps p50 divided by the baseline's. Latency figures are
measured with no time limit (``QUERY_TIMEOUT=0``) and writes with a long one (``STORE_WRITE_TIMEOUT=3600``), so
that the bench measures rather than fails at the limits meant for a public service.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
DEFAULT_SIZES = {"embedded": [10_000, 100_000], "remote": [10_000, 100_000, 300_000, 1_000_000]}
QUICK_SIZES = {"remote": [2_000, 10_000], "embedded": [2_000, 10_000]}
#: Settings of the mfmkg process under test: measure, do not fail at the public service's limits.
BENCH_CONFIG = {"QUERY_TIMEOUT": 0, "STORE_WRITE_TIMEOUT": 3600}

#: (column header, key in the step's result, format, growth column?)
COLUMNS = [
    ("backend", "backend", "s", False),
    ("papers", "papers", "d", True),
    ("triples", "triples", "d", True),
    ("load s", "load_s", ".1f", True),
    ("entries/s", "entries_per_s", ".0f", True),
    ("triples/s", "triples_per_s", ".0f", True),
    ("gaps 1st ms", "gaps_first_ms", ".1f", True),
    ("gaps p50 ms", "gaps_p50_ms", ".1f", True),
    ("base p50 ms", "base_p50_ms", ".1f", False),
    ("mfmkg/base", "mfmkg_over_base", ".2f", False),
    ("cached p50 ms", "cached_p50_ms", ".2f", True),
    ("load RSS MiB", "load_rss_mib", ".0f", True),
    ("query RSS MiB", "query_rss_mib", ".0f", True),
    ("server MiB", "server_hwm_mib", ".0f", True),
    ("disk MiB", "disk_mib", ".0f", True),
]
GROWTH = "x"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mib(pid: int, field: str) -> float | None:
    """A ``VmHWM``/``VmRSS`` line of ``/proc/PID/status`` in MiB (None when unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def dir_mib(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total / (1 << 20)


def revision() -> str:
    """The commit measured, and the files of the code under test that differ from it (work in progress)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mfmkg", "loaders", "queries", "ontology"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"commit {head or '?'}" + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")


def human(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


# -- child phases ----------------------------------------------------------------------------------------------

def _config(backend: str, target: str) -> dict:
    from mfmkg.config import load_config

    over = {"STORE": target} if backend == "remote" else {"DATA_DIR": target, "MEMORY": False}
    return load_config({**BENCH_CONFIG, **over}, environ={})


def phase_load(backend: str, target: str, path: str) -> dict:
    from mfmkg.loaders.pipeline import load_paths
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store import open_store

    store = open_store(_config(backend, target))
    ensure_loaded(store, ontology_files())
    before = _stored(store)
    t0 = time.perf_counter()
    report = load_paths(store, [path], source="scale", progress=_Progress(t0))
    seconds = time.perf_counter() - t0
    src = report.sources[0]
    after = _stored(store)
    store.close()
    return {"entries": src.entries, "status": src.status, "errors": len(src.errors), "load_s": seconds,
            "written": src.triples, "asserted": src.asserted, "inferred": src.inferred,
            "ontology_triples": before, "triples": after, "load_rss_mib": peak_rss_mib(),
            "problems": [str(p) for p in src.errors[:3]]}


class _Progress:
    """Logs the lines parsed so far about once a minute (the writes follow a chunk behind)."""

    def __init__(self, t0: float):
        self.t0, self.lines, self.shown = t0, 0, t0

    def __call__(self, n: int) -> None:
        self.lines += n
        now = time.perf_counter()
        if now - self.shown >= 60:
            self.shown = now
            log(f"  {self.lines} lines parsed in {now - self.t0:.0f} s ({self.lines / (now - self.t0):.0f}/s)")


def _stored(store) -> int:
    return sum(n for g, n in store.stats().items() if g != "default")


def phase_query(backend: str, target: str, reps: int) -> dict:
    import requests

    from bench.service_latency import interleaved, rows_of_json, rows_of_ox
    from mfmkg.binding import bind_values
    from mfmkg.cache import cached_run_named
    from mfmkg.named_queries import bind_params, get_query, run_named
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store import open_store

    store = open_store(_config(backend, target))
    ensure_loaded(store, ontology_files())  # what every mfmkg command does on open (a no-op here)
    gaps = get_query("gaps")
    t0 = time.perf_counter()
    first = cached_run_named(store, gaps, {})
    first_s = time.perf_counter() - t0
    text = bind_values(gaps.sparql, bind_params(store, gaps, {}))  # exactly what mfmkg evaluates

    if backend == "remote":
        url = store.endpoints.query

        def base():
            resp = requests.post(url, data=text.encode(), timeout=3600,
                                 headers={"Content-Type": "application/sparql-query",
                                          "Accept": "application/sparql-results+json"})
            resp.raise_for_status()
            return rows_of_json(resp.json())
    else:
        bare = store._store  # the pyoxigraph Store under mfmkg's EmbeddedStore

        def base():
            return rows_of_ox(bare.query(text, use_default_graph_as_union=True))

    timings, out = interleaved({"mfmkg": lambda: run_named(store, gaps, {}), "base": base}, reps)
    mine = [tuple(None if t is None else str(t) for t in row) for row in out["mfmkg"].rows]
    same = mine == [tuple(None if v is None else str(v) for v in row) for row in out["base"]]
    cached = []
    for _ in range(max(reps, 5)):
        t1 = time.perf_counter()
        cached_run_named(store, gaps, {})
        cached.append(time.perf_counter() - t1)
    evidence = [int(r[-1]) for r in mine if r[-1] is not None]
    store.close()
    p50 = timings["mfmkg"].p50
    return {"gaps_first_ms": first_s * 1000, "gaps_p50_ms": p50 * 1000, "base_p50_ms": timings["base"].p50 * 1000,
            "mfmkg_over_base": p50 / timings["base"].p50, "cached_p50_ms": sorted(cached)[len(cached) // 2] * 1000,
            "same_rows": same and len(first.rows) == len(mine), "threats": len(mine),
            "threats_with_evidence": sum(1 for e in evidence if e > 0), "query_rss_mib": peak_rss_mib()}


def child(phase: str, backend: str, target: str, path: str | None, reps: int) -> dict:
    cmd = [sys.executable, "-m", "bench.scale", "--phase", phase, "--backend", backend, "--target", target,
           "--reps", str(reps)] + (["--file", path] if path else [])
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # its stderr (log, errors) is ours
    if out.returncode != 0:
        raise RuntimeError(f"{phase} phase failed with exit code {out.returncode} (its error is logged above)")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the Oxigraph server ---------------------------------------------------------------------------------------

class Server:
    """``oxigraph serve`` on a free loopback port with its data in ``location``; ``close`` stops it."""

    def __init__(self, location: Path):
        from bench.service_latency import free_port, wait_http

        exe = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))
        self.port = free_port()
        self.location = location
        self.proc = subprocess.Popen([exe, "serve", "--location", str(location), "--bind", f"127.0.0.1:{self.port}",
                                      "--union-default-graph"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = f"sparql+http://127.0.0.1:{self.port}"
        try:
            wait_http(f"http://127.0.0.1:{self.port}/", self.proc, 60)
        except Exception:
            self.close()
            raise

    def peak_mib(self) -> float | None:
        return proc_status_mib(self.proc.pid, "VmHWM")

    def close(self) -> None:
        from bench.service_latency import stop

        stop(self.proc)


# -- the run ---------------------------------------------------------------------------------------------------

def step(backend: str, n: int, jsonl: Path, work: Path, reps: int) -> dict:
    location = work / f"{backend}-{n}"
    rev = revision()  # the children import the code now: others may be changing the tree during a long run
    server = Server(location) if backend == "remote" else None
    try:
        target = server.url if server else str(location)
        log(f"{backend} {human(n)}: loading")
        loaded = child("load", backend, target, str(jsonl), reps)
        if loaded["status"] != "loaded" or loaded["errors"] or loaded["entries"] != n:
            raise RuntimeError(f"load {loaded['status']}, {loaded['entries']} entries, {loaded['errors']} errors, "
                               f"e.g. {'; '.join(loaded['problems'])}")
        log(f"{backend} {human(n)}: {loaded['entries']} entries in {loaded['load_s']:.1f} s; gaps query")
        queried = child("query", backend, target, None, reps)
        server_peak = server.peak_mib() if server else None
    finally:
        if server:
            server.close()
    row = {"backend": backend, "papers": n, "revision": rev, **loaded, **queried, "server_hwm_mib": server_peak,
           "disk_mib": dir_mib(location)}
    row["entries_per_s"] = loaded["entries"] / loaded["load_s"]
    row["triples_per_s"] = loaded["written"] / loaded["load_s"]
    shutil.rmtree(location, ignore_errors=True)
    log(f"{backend} {human(n)}: done " + json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                                     for k, v in row.items()}))
    return row


def growth(rows: list[dict]) -> None:
    """Add ``KEY_x``: each figure over the same backend's first (smallest) row."""
    first: dict[str, dict] = {}
    for r in rows:
        base = first.setdefault(r["backend"], r)
        for _, key, _, grows in COLUMNS:
            if grows:
                a, b = r.get(key), base.get(key)
                r[key + "_x"] = a / b if a is not None and b else None


def table(rows: list[dict]) -> list[str]:
    head, cells = [], []
    for title, key, _, grows in COLUMNS:
        head.append(title)
        if grows:
            head.append(GROWTH)
    for r in rows:
        line = []
        for _, key, fmt, grows in COLUMNS:
            v = r.get(key)
            line.append("-" if v is None else format(v, fmt))
            if grows:
                g = r.get(key + "_x")
                line.append("-" if g is None else f"{g:.2f}")
        cells.append(line)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    out = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", help="comma-separated publication counts, for every backend chosen (default: "
                                    "embedded 10000,100000; remote 10000,100000,300000,1000000)")
    ap.add_argument("--backend", choices=["remote", "embedded", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="2000 and 10000 publications, 3 samples per figure")
    ap.add_argument("--reps", type=int, default=None, help="samples per latency figure (default 7, --quick 3)")
    ap.add_argument("--workdir", help="generated files and stores here (default: a temporary directory, removed)")
    ap.add_argument("--json", dest="json_out", help="also write every figure of every step to this JSON file")
    ap.add_argument("--phase", choices=["load", "query"], help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 7)
    if args.phase:
        result = (phase_load(args.backend, args.target, args.file) if args.phase == "load"
                  else phase_query(args.backend, args.target, reps))
        print(json.dumps(result))
        return 0

    backends = ["embedded", "remote"] if args.backend == "both" else [args.backend]
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped run still prints the steps it completed
    if args.sizes:
        sizes = {b: sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()}) for b in backends}
    else:
        sizes = {b: (QUICK_SIZES if args.quick else DEFAULT_SIZES)[b] for b in backends}
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mfmkg-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    started, rev = time.perf_counter(), revision()
    rows: list[dict] = []
    failed = None
    try:
        files = generate(sorted({n for b in backends for n in sizes[b]}), work)
        for b in backends:
            for n in sizes[b]:
                try:
                    rows.append(step(b, n, files[n], work, reps))
                except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - report what completed
                    failed = f"{b} {n}: {exc or type(exc).__name__}"
                    log(f"FAILED {failed}")
                    break
            if failed:
                break
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    growth(rows)
    revs = {r["revision"] for r in rows} | {rev}
    print(f"\nscale: generated publications, gaps query p50 of {reps}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, {time.perf_counter() - started:.0f} s in all, "
          + (rev if len(revs) == 1 else "the code changed during the run (revision of each step below)"))
    print("\n".join(table(rows)))
    print(f"{GROWTH}: the figure on its left over the same backend's smallest size; base: the same gaps query "
          "sent straight to the Oxigraph server (remote) / asked of the bare pyoxigraph store (embedded)")
    bad = [f"{r['backend']} {r['papers']}" for r in rows if not r["same_rows"]]
    for r in rows:
        print(f"{r['backend']} {human(r['papers'])}: {r['asserted']} asserted and {r['inferred']} inferred links, "
              f"{r['threats_with_evidence']} of {r['threats']} threats with evidence, mfmkg rows = base rows: "
              f"{'yes' if r['same_rows'] else 'NO'}" + ("" if len(revs) == 1 else f"; {r['revision']}"))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    if failed:
        print(f"FAILED: {failed}")
    return 1 if failed or bad else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def generate(sizes: list[int], work: Path) -> dict[int, Path]:
    """One JSONL file per size (the generator is seeded: each file is a prefix of the larger ones)."""
    from bench.service_latency import threat_words, write_jsonl
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    mem = EmbeddedStore(None)
    ensure_loaded(mem, ontology_files())
    threats = threat_words(mem)
    mem.close()
    files = {}
    for n in sizes:
        files[n] = work / f"papers-{n}.jsonl"
        if not files[n].exists():
            log(f"generating {n} publications")
            write_jsonl(files[n], n, threats)
    return files


if __name__ == "__main__":
    raise SystemExit(main())
