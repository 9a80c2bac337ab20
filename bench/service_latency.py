"""Service latency at N publications: the gaps query on the bare store against ``mfmkg serve``, and against the
Oxigraph server (issue "The analyst's service", Speed).

    python bench/service_latency.py                   # 100k publications (about 5 minutes on 2 cores)
    python bench/service_latency.py --papers 10000    # quick

What it does, all on loopback and stopping by itself:

1. writes N generated publications as JSONL (titles and abstracts use the ontology's own threat keywords, some
   entries carry a threat tag) and loads them with the literature loaders (``mfmkg.loaders.pipeline``) into an
   in-memory store, so the triples have exactly the loaders' shape; the store is dumped as N-Quads and
   bulk-loaded into on-disk stores and into the store of an Oxigraph server (``oxigraph serve``, union default
   graph) started here;
2. bare store: the gaps query (the text of ``queries/gaps.rq``, no parameters) on pyoxigraph in memory and on
   disk, in turns with the query as it was before it was rewritten (``BEFORE``);
3. ``mfmkg serve`` (a subprocess; ``--memory --load`` the same JSONL, and ``--data-dir`` a copy of the disk
   store): GET ``/queries/gaps.json`` and POST ``/sparql`` with the same query text. First calls are cache
   misses, measured on a ``serve`` with ``MFMKG_CACHE_ENTRIES=0`` (every call takes the miss path) in turns with
   the bare store in the same storage mode (blocks of samples, see ``interleaved``), so the ratio stays fair on a
   busy machine; the disk mode also reports
   the first call of a freshly started process. Repeated calls hit the cache;
4. throughput: 8 client threads (one ``requests.Session`` each) for 10 s against mfmkg's ``/queries/gaps.json``
   and against the Oxigraph server's ``/query`` with the same query;
5. cold start: ``mfmkg serve --data-dir EXISTING`` until ``/-/health`` answers, 5 times (p50);
6. every way of asking must give the same rows (new and old query, bare, served, Oxigraph server).

Prints one table with every figure, ratio, target and PASS/MISS; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

RESULTS_JSON = "application/sparql-results+json"

#: The gaps query before the evidence count was rewritten (queries/gaps.rq at commit 883231d, header left out):
#: the reference its rows are compared with.
BEFORE = """PREFIX mfm: <https://w3id.org/mfmkg/ont#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX dcterms: <http://purl.org/dc/terms/>

SELECT ?threat ?label ?family ?defenses ?attacks ?evidence
WHERE {
  {
    SELECT ?threat ?family (SAMPLE(?l) AS ?label)
           (COUNT(DISTINCT ?assertedDefense) AS ?asserted) (COUNT(DISTINCT ?anyDefense) AS ?all)
    WHERE {
      ?threat rdfs:subClassOf+ mfm:Threat ;
              rdfs:subClassOf* ?family .
      ?family rdfs:subClassOf mfm:Threat .
      OPTIONAL { ?threat rdfs:label ?l }
      OPTIONAL {
        ?threat rdfs:subClassOf* ?covered .
        ?coverage a mfm:Coverage ;
                  mfm:coveredThreat ?covered ;
                  mfm:coveringDefense ?anyDefense .
        BIND(IF(EXISTS { ?coverage mfm:linkKind mfm:Inferred }, ?none, ?anyDefense) AS ?assertedDefense)
      }
    } GROUP BY ?threat ?family
  }
  FILTER(!BOUND(?modality) || EXISTS { ?threat mfm:manipulatesModality|mfm:partiallyManipulatesModality ?modality })
  FILTER(!BOUND(?flow) || EXISTS { ?threat mfm:onFlow ?flow })
  FILTER(!BOUND(?axis) || EXISTS { ?threat mfm:onAxis ?axis })
  FILTER(!BOUND(?level) || EXISTS { ?threat mfm:level ?level })
  BIND(IF(COALESCE(?inferred, false), ?all, ?asserted) AS ?defenses)
  {
    SELECT ?threat (COUNT(DISTINCT ?attack) AS ?attacks) WHERE {
      ?threat rdfs:subClassOf+ mfm:Threat .
      OPTIONAL { ?attack a mfm:Attack ; a/rdfs:subClassOf* ?threat . }
    } GROUP BY ?threat
  }
  {
    SELECT ?threat (COUNT(DISTINCT ?paper) AS ?evidence) WHERE {
      { SELECT DISTINCT ?threat ?sub WHERE { ?threat rdfs:subClassOf+ mfm:Threat . ?sub rdfs:subClassOf* ?threat . } }
      OPTIONAL {
        { ?attack a ?sub ; a mfm:Attack ; dcterms:source ?paper . }
        UNION
        { ?evidence mfm:topic ?sub . ?paper mfm:linkEvidence ?evidence . }
      }
    } GROUP BY ?threat
  }
}
ORDER BY ?defenses DESC(?attacks) ?label
"""


# -- statistics and small helpers ------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return pct(self.samples, 50)

    @property
    def p95(self) -> float:
        return pct(self.samples, 95)


def timed(fn, reps: int, warm: int = 0) -> tuple[Timing, object]:
    out = None
    for _ in range(warm):
        out = fn()
    t = Timing()
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        t.samples.append(time.perf_counter() - start)
    return t, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``url`` answers (any status below 500); raises if the process exits or time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}: {_stderr(proc)}")
        try:
            if requests.get(url, timeout=5).status_code < 500:
                return time.perf_counter() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _stderr(proc: subprocess.Popen) -> str:
    try:
        return proc.stderr.read()[-3000:] if proc.stderr else ""
    except (OSError, ValueError):
        return ""


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- data ------------------------------------------------------------------------------------------------------

_SUBJECTS = ["vision-language models", "multimodal assistants", "text-to-image generators", "speech models",
             "video understanding models", "embodied agents", "document understanding pipelines"]
_FRAMES = ["{k} against {s}", "Revisiting {k} for {s}", "A study of {k} in {s}", "{k} and {k2} in {s}",
           "Measuring {k} on {s}", "Towards understanding {k}"]
_VENUES = ["IEEE S&P", "USENIX Security", "ACM CCS", "NDSS", "NeurIPS", "ICLR", "CVPR", "ACL"]
_NAMES = ["Wei", "Anna", "Jonas", "Priya", "Carlos", "Mei", "Omar", "Sofia", "Kenji", "Lena"]
_FAMILY = ["Zhang", "Liu", "Schmidt", "Garcia", "Patel", "Kim", "Rossi", "Okafor", "Dubois", "Nakamura"]


def threat_words(store) -> list[tuple[str, str, list[str]]]:
    """(threat IRI, label, keywords naming only that threat) for every threat class, from the ontology."""
    from mfmkg.loaders.vocabulary import THREAT, load_vocabulary

    vocab = load_vocabulary(store)
    own: dict[str, list[str]] = {}
    for word, topics in vocab.keywords.items():
        if len(topics) == 1 and ":" not in word and "," not in word and ";" not in word:
            own.setdefault(topics[0], []).append(word)
    out = []
    for t in sorted(vocab.topics.values(), key=lambda t: t.iri):
        if t.group == THREAT and own.get(t.iri):
            out.append((t.iri, t.label, sorted(own[t.iri])[:4]))
    return out


def write_jsonl(path: Path, n: int, threats: list[tuple[str, str, list[str]]], seed: int = 11) -> None:
    """N publications; most name one or two threats in the title, half repeat one in the abstract (a second
    evidence node for the same topic), a fifth carry the threat's label as a tag (an asserted link)."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            (_, label, words), (_, _, words2) = rnd.choice(threats), rnd.choice(threats)
            k, k2 = rnd.choice(words), rnd.choice(words2)
            if rnd.random() < 0.1:  # a tenth name no threat at all
                k = k2 = "robustness"
            year, month = rnd.randint(2018, 2025), rnd.randint(1, 12)
            p = {"title": rnd.choice(_FRAMES).format(k=k.capitalize(), k2=k2, s=rnd.choice(_SUBJECTS)) + f" ({i})",
                 "authors": [f"{rnd.choice(_NAMES)} {rnd.choice(_FAMILY)}{i % 89}" for _ in range(rnd.randint(1, 5))],
                 "year": year, "month": month, "venue": rnd.choice(_VENUES),
                 "url": f"https://example.org/bench/{i}"}
            if i % 3 and i < 100_000:  # arXiv numbers have at most five digits: beyond, every paper gets a DOI
                p["arxiv"] = f"{year % 100:02d}{month:02d}.{i:05d}"
            else:
                p["doi"] = f"10.5555/bench.{i}"
            if rnd.random() < 0.5:
                p["abstract"] = f"We examine {k} in {rnd.choice(_SUBJECTS)} and report results on open benchmarks."
            if rnd.random() < 0.2:
                p["tags"] = [label]
            fh.write(json.dumps(p) + "\n")


# -- measurements ----------------------------------------------------------------------------------------------

def rows_of_ox(solutions) -> list[tuple]:
    variables = [v.value for v in solutions.variables]
    return [tuple(None if s[v] is None else s[v].value for v in variables) for s in solutions]


def rows_of_json(body: dict) -> list[tuple]:
    variables = body["head"]["vars"]
    return [tuple(b[v]["value"] if v in b else None for v in variables) for b in body["results"]["bindings"]]


def rows_of_named(body: dict) -> list[tuple]:
    return [tuple(None if r.get(v) is None else str(r[v]) for v in body["vars"]) for r in body["rows"]]


def http_sparql(session: requests.Session, url: str, query: str, oxigraph: bool) -> requests.Response:
    if oxigraph:  # the Oxigraph server's protocol endpoint
        resp = session.post(url, data=query.encode(), timeout=120,
                            headers={"Content-Type": "application/sparql-query", "Accept": RESULTS_JSON})
    else:
        resp = session.post(url, data={"query": query}, headers={"Accept": RESULTS_JSON}, timeout=120)
    resp.raise_for_status()
    return resp


def get_ok(session: requests.Session, url: str) -> requests.Response:
    resp = session.get(url, timeout=120)
    resp.raise_for_status()
    return resp


def throughput(call, clients: int, seconds: float) -> float:
    """Requests per second of ``clients`` threads, each with its own Session, calling ``call(session)``."""
    stop_at = time.perf_counter() + seconds
    counts, errors = [0] * clients, []

    def worker(i: int) -> None:
        with requests.Session() as s:
            while time.perf_counter() < stop_at:
                try:
                    call(s)
                except Exception as exc:  # noqa: BLE001 - reported below, a failed bench must not hang
                    errors.append(exc)
                    return
                counts[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"throughput client failed: {errors[0]}")
    return sum(counts) / (time.perf_counter() - start)


class Serve:
    """``mfmkg serve`` in a subprocess on a free loopback port."""

    def __init__(self, args: list[str], env: dict, start_timeout: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "mfmkg", "serve", "--port", str(self.port), *args],
                                     env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        try:
            self.start_seconds = wait_http(self.url + "/-/health", self.proc, start_timeout)
        except Exception:
            stop(self.proc)
            raise

    def close(self) -> None:
        stop(self.proc)


# -- the run ---------------------------------------------------------------------------------------------------

@dataclass
class Row:
    measure: str
    value: str
    target: str = ""
    ok: bool | None = None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=20, help="samples per latency figure (default 20)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    ap.add_argument("--starts", type=int, default=5, help="cold starts measured")
    ap.add_argument("--workdir", help="keep generated files and stores here (default: a temporary directory)")
    args = ap.parse_args(argv)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mfmkg-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    procs: list = []
    try:
        rows = run(args, work, procs)
    finally:
        for p in procs:
            p.close() if isinstance(p, Serve) else stop(p)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print_table(args, rows)
    return 0 if all(r.ok is not False for r in rows) else 1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def interleaved(calls: dict, reps: int, warm: int = 1, blocks: int = 4) -> tuple[dict[str, Timing], dict]:
    """Samples of several calls taken in turns, a block of consecutive samples of one call at a time (the order
    rotating), so that a change in the machine's load during the run touches all of them alike and their ratios
    stay fair on a shared machine. Blocks rather than single samples: alternating every call would make each
    process start on CPU caches the other one just filled, which is not how either runs on its own."""
    out = {}
    for name, fn in calls.items():
        for _ in range(warm):
            out[name] = fn()
    timings = {name: Timing() for name in calls}
    names, sizes = list(calls), [reps // blocks + (1 if b < reps % blocks else 0) for b in range(blocks)]
    for b, size in enumerate(sizes):
        for name in names[b % len(names):] + names[:b % len(names)]:
            out[name] = calls[name]()  # one untimed call to settle in after the other process ran
            for _ in range(size):
                start = time.perf_counter()
                out[name] = calls[name]()
                timings[name].samples.append(time.perf_counter() - start)
    return timings, out


def run(args, work: Path, procs: list) -> list[Row]:
    import pyoxigraph as ox

    from mfmkg.loaders.pipeline import load_paths
    from mfmkg.named_queries import get_query
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    gaps = get_query("gaps").sparql
    reps, rows = args.reps, []
    env = {"MFMKG_DATA_DIR": str(work / "unused"), "MFMKG_RELOAD_INTERVAL": "0"}
    oxigraph_cli = shutil.which("oxigraph") or str(Path(sys.executable).with_name("oxigraph"))
    union = {"use_default_graph_as_union": True}
    results: dict[str, list] = {}  # rows each way of asking, all compared at the end

    def served(store_ox, mode: str, serve_args: list[str]) -> None:
        """Bare store against ``serve`` with the cache off (first calls), then with it on (repeated calls)."""
        log(f"serve, {mode} store, cache off: first calls, in turns with the bare store")
        srv = Serve(serve_args, {**env, "MFMKG_CACHE_ENTRIES": "0"}, 900)
        procs.append(srv)
        with requests.Session() as s:
            t, out = interleaved({
                "bare": lambda: rows_of_ox(store_ox.query(gaps, **union)),
                "named": lambda: get_ok(s, srv.url + "/queries/gaps.json"),
                "sparql": lambda: http_sparql(s, srv.url + "/sparql", gaps, False),
                "ask": lambda: http_sparql(s, srv.url + "/sparql", "ASK {}", False)}, reps)
        srv.close()
        procs.remove(srv)
        results[f"{mode} /queries miss"] = rows_of_named(out["named"].json())
        results[f"{mode} /sparql miss"] = rows_of_json(out["sparql"].json())
        bare = t["bare"]
        rows.append(Row(f"{mode}: bare gaps in the same turns: p50 / p95 ms", f"{ms(bare.p50)} / {ms(bare.p95)}"))
        rows.append(Row(f"{mode}: /sparql ASK {{}} (HTTP + query process, nothing to evaluate): p50 / p95 ms",
                        f"{ms(t['ask'].p50)} / {ms(t['ask'].p95)}"))
        for what, key in (("/queries/gaps.json", "named"), ("/sparql", "sparql")):
            r50, r95 = t[key].p50 / bare.p50, t[key].p95 / bare.p95
            rows.append(Row(f"{mode}: {what} first call (cache miss): p50 / p95 ms; ratio to bare p50 / p95",
                            f"{ms(t[key].p50)} / {ms(t[key].p95)};  {r50:.2f} / {r95:.2f}", "ratio <= 1.5",
                            r50 <= 1.5 and r95 <= 1.5))

        log(f"serve, {mode} store, cache on: repeated calls and throughput")
        srv = Serve(serve_args, {**env, "MFMKG_CACHE_ENTRIES": "256"}, 900)
        procs.append(srv)
        named_url = srv.url + "/queries/gaps.json"
        with requests.Session() as s:
            t, out = interleaved({"named": lambda: get_ok(s, named_url),
                                  "sparql": lambda: http_sparql(s, srv.url + "/sparql", gaps, False)}, reps)
            stats = get_ok(s, srv.url + "/-/cache.json").json()
        results[f"{mode} /queries hit"] = rows_of_named(out["named"].json())
        results[f"{mode} /sparql hit"] = rows_of_json(out["sparql"].json())
        for what, key in (("/queries/gaps.json", "named"), ("/sparql", "sparql")):
            rows.append(Row(f"{mode}: {what} repeated (cache hit): p50 / p95 ms",
                            f"{ms(t[key].p50)} / {ms(t[key].p95)}", "< 50 ms", t[key].p95 < 0.05))
        rows.append(Row(f"{mode}: cache counters after the repeated calls",
                        f"{stats['hits']} hits, {stats['misses']} misses, {stats['entries']} entries, "
                        f"{stats['bytes']} bytes"))
        log(f"throughput: {args.clients} clients x {args.seconds:.0f} s against mfmkg ({mode})")
        tput[mode] = throughput(lambda s: get_ok(s, named_url), args.clients, args.seconds)
        srv.close()
        procs.remove(srv)

    def before_after(store_ox, mode: str) -> None:
        t, out = interleaved({"new": lambda: rows_of_ox(store_ox.query(gaps, **union)),
                              "before": lambda: rows_of_ox(store_ox.query(BEFORE, **union))}, max(5, reps // 2))
        results[f"{mode} bare"], results[f"{mode} bare, before the rewrite"] = out["new"], out["before"]
        rows.append(Row(f"{mode}: bare gaps p50 / p95 ms (query before the rewrite: p50 / p95)",
                        f"{ms(t['new'].p50)} / {ms(t['new'].p95)}  ({ms(t['before'].p50)} / "
                        f"{ms(t['before'].p95)}: {t['before'].p50 / t['new'].p50:.1f}x slower)"))

    tput: dict[str, float] = {}

    # 1. data: generated JSONL -> the literature loaders -> memory store
    mem = EmbeddedStore(None)
    ensure_loaded(mem, ontology_files())
    jsonl = work / f"papers-{args.papers}.jsonl"
    write_jsonl(jsonl, args.papers, threat_words(mem))
    log(f"loading {args.papers} publications into the memory store")
    t0 = time.perf_counter()
    src = load_paths(mem, [str(jsonl)]).sources[0]
    load_s = time.perf_counter() - t0
    triples = sum(n for g, n in mem.stats().items() if g != "default")
    rows.append(Row("data: publications / triples / loader time into memory",
                    f"{src.entries} / {triples} / {load_s:.1f} s (links: {src.asserted} asserted, "
                    f"{src.inferred} inferred)"))

    # 2. memory: bare store (this process) and serve --memory --load (the same file through the same loaders)
    log("bare store: memory")
    before_after(mem._store, "memory")
    served(mem._store, "memory", ["--memory", "--load", str(jsonl)])
    nq = work / "all.nq"
    mem._store.dump(output=str(nq), format=ox.RdfFormat.N_QUADS)
    mem.close()
    del mem

    # 3. disk: bulk-loaded from the dump (the loaders' transactions would only make the setup slower), twice: one
    #    copy for the bare store in this process, one for serve (RocksDB lets one process open a store)
    log("bare store: disk")
    bare_dir, serve_dir = work / "disk-bare", work / "disk-serve"
    for d in (bare_dir, serve_dir):
        bulk = ox.Store(str(d))
        bulk.bulk_load(path=str(nq), format=ox.RdfFormat.N_QUADS)
        bulk.flush()
        del bulk
    disk = EmbeddedStore(bare_dir)
    before_after(disk._store, "disk")
    log("cold starts of serve on the disk store")
    starts, firsts = [], []
    for _ in range(args.starts):
        srv = Serve(["--data-dir", str(serve_dir)], env, 120)
        starts.append(srv.start_seconds)
        with requests.Session() as s:
            t0 = time.perf_counter()
            get_ok(s, srv.url + "/queries/gaps.json")
            firsts.append(time.perf_counter() - t0)
        srv.close()
    start_p50 = pct(starts, 50)
    rows.append(Row(f"disk: cold start of serve on the existing store until /-/health answers: p50 of "
                    f"{args.starts} s (max {max(starts):.2f})", f"{start_p50:.2f}", "< 2 s", start_p50 < 2))
    rows.append(Row(f"disk: /queries/gaps.json, first call of a fresh process: p50 of {args.starts} ms",
                    f"{ms(pct(firsts, 50))}"))
    served(disk._store, "disk", ["--data-dir", str(serve_dir)])
    disk.close()
    del disk

    # 4. the Oxigraph server on the same data
    log("Oxigraph server")
    srv_dir = work / "oxigraph"
    subprocess.run([oxigraph_cli, "load", "--location", str(srv_dir), "--file", str(nq)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nq.unlink()
    port = free_port()
    oxi = subprocess.Popen([oxigraph_cli, "serve", "--location", str(srv_dir), "--bind", f"127.0.0.1:{port}",
                            "--union-default-graph"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(oxi)
    oxi_url = f"http://127.0.0.1:{port}/query"
    wait_http(f"http://127.0.0.1:{port}/", oxi, 60)
    with requests.Session() as s:
        oxi_t, resp = timed(lambda: http_sparql(s, oxi_url, gaps, True), reps, warm=1)
    results["Oxigraph server"] = rows_of_json(resp.json())
    rows.append(Row("Oxigraph server: gaps over HTTP, 1 client: p50 / p95 ms", f"{ms(oxi_t.p50)} / {ms(oxi_t.p95)}"))
    log(f"throughput: {args.clients} clients x {args.seconds:.0f} s against the Oxigraph server")
    tput["oxigraph"] = throughput(lambda s: http_sparql(s, oxi_url, gaps, True), args.clients, args.seconds)
    stop(oxi)

    rows.append(Row(f"throughput, {args.clients} clients, Oxigraph server /query (same query): req/s",
                    f"{tput['oxigraph']:.1f}"))
    for mode in ("memory", "disk"):
        ratio = tput[mode] / tput["oxigraph"]
        rows.append(Row(f"throughput, {args.clients} clients, mfmkg /queries/gaps.json ({mode}, repeated): "
                        "req/s; ratio", f"{tput[mode]:.1f};  {ratio:.1f}x", ">= 10x", ratio >= 10))
    reference = results["memory bare"]
    differ = [k for k, v in results.items() if v != reference]
    linked = sum(1 for r in reference if r[-1] and int(r[-1]) > 0)
    rows.append(Row(f"same rows: new query = before, bare = served (miss, hit) = Oxigraph server ({len(results)} "
                    "ways)", f"{'yes' if not differ else 'NO: ' + ', '.join(differ)} ({len(reference)} threats, "
                    f"{linked} with evidence)", "identical", not differ))
    return rows


def print_table(args, rows: list[Row]) -> None:
    print(f"\nservice latency: {args.papers} generated publications, {args.reps} samples per figure, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    w1 = max(len(r.measure) for r in rows)
    w2 = max(len(r.value) for r in rows)
    w3 = max(len(r.target) for r in rows)
    print(f"{'measure':<{w1}}  {'value':<{w2}}  {'target':<{w3}}  result")
    print("-" * (w1 + w2 + w3 + 12))
    for r in rows:
        result = "" if r.ok is None else ("PASS" if r.ok else "MISS")
        print(f"{r.measure:<{w1}}  {r.value:<{w2}}  {r.target:<{w3}}  {result}")
    missed = [r.measure for r in rows if r.ok is False]
    print(f"\n{'all targets met' if not missed else str(len(missed)) + ' target(s) missed'}")


if __name__ == "__main__":
    raise SystemExit(main())
