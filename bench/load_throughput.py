"""Load throughput on generated literature: 100k-entry BibTeX and JSONL files (docs/loading.md, "Speed").

For each format it measures, each in a fresh child process (so peak memory is that phase's own):
  parse    -- the format parser alone, iterating every Entry (the same parser the load uses);
  classify -- the parser and ``classify`` of every entry, nothing else (what no change to the rest of the
              pipeline can go below: its ratio to parse is a floor for the load's);
  load     -- ``mfmkg.loaders.pipeline.load_paths`` end to end (read, parse, validate, classify, build the
              triples, stream them into the store in one transaction) into a store holding the shipped ontology;
  dry      -- the same load with ``dry_run``: every step but the store's (what the Python side costs alone);
  store    -- the store alone: a fresh store reads the N-Triples that the load writes (dumped by another child,
              untimed) with ``Store.load_path``, the call the load's graph writer makes (the store side alone);
and prints entries/s of each, the load's ratio (load time / parse time), the classify, dry and store ratios (the
two sides of the load run side by side, so the load's ratio is at least the larger of dry and store), each phase's
peak RSS, and how the store is fed ("fifo": the store reads a FIFO without the GIL, ``Store.streams_paths``;
"queue": through Python ``read`` calls). Targets: >= 5,000 entries/s end to end, ratio <= 2, peak RSS < 1 GiB.

    python -m bench.load_throughput                 # 100k entries, in-memory store
    python -m bench.load_throughput --entries 20000 --store disk
    python -m bench.load_throughput --entries 500 --out /tmp/lt   # generated files elsewhere than bench/out/

The phases must agree: the load, the dry run and the store alone hold the same triple count, or the run fails
(exit 2) before any figure is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"

# Word pools for plausible titles and abstracts: a benchmark fixture, not classifier vocabulary.
_SUBJECTS = ["Vision-Language Models", "Multimodal Large Language Models", "Text-to-Image Diffusion Models",
             "Audio Language Models", "LLM Agents", "Retrieval-Augmented Generation", "CLIP Encoders",
             "Video LLMs", "Web Agents", "Speech Recognition Systems"]
_TOPICS = ["Jailbreak Attacks", "Adversarial Examples", "Backdoor Attacks", "Data Poisoning",
           "Membership Inference", "Prompt Injection", "Prompt Stealing", "Training Data Extraction",
           "Typographic Attacks", "Universal Perturbations", "Energy-Latency Attacks", "Safety Alignment",
           "Hallucination", "Robust Fine-Tuning", "Input Purification", "Guardrails"]
_FRAMES = ["{t} on {s}", "Towards Robust {s} against {t}", "A Study of {t} in {s}", "Revisiting {t} for {s}",
           "{n}: {t} against {s}", "Benchmarking {t} in {s}", "Defending {s} from {t}", "On the Limits of {t}"]
_NAMES = ["Wei", "Yi", "Anna", "Jonas", "Priya", "Carlos", "Mei", "Omar", "Sofia", "Kenji", "Lena", "Ravi"]
_FAMILY = ["Zhang", "Liu", "Schmidt", "Garcia", "Patel", "Kim", "Nakamura", "Rossi", "Okafor", "Dubois"]
_VENUES = ["IEEE S&P", "USENIX Security", "ACM CCS", "NDSS", "NeurIPS", "ICLR", "ICML", "CVPR", "ACL"]
_FILLER = ("We study how {t} affect {s} and propose a method that is evaluated on several open and commercial "
           "models. Our experiments show consistent results across benchmarks, and we discuss limitations, "
           "ethical considerations and directions for future work on the security of multimodal systems.")


def _papers(n: int, seed: int = 7):
    rnd = random.Random(seed)
    for i in range(n):
        t, s = rnd.choice(_TOPICS), rnd.choice(_SUBJECTS)
        title = rnd.choice(_FRAMES).format(t=t, s=s, n=f"Method{i}")
        year, month = rnd.randint(2018, 2025), rnd.randint(1, 12)
        authors = [f"{rnd.choice(_NAMES)} {rnd.choice(_FAMILY)}{i % 97}" for _ in range(rnd.randint(2, 6))]
        p = {"title": title, "authors": authors, "year": year, "month": month, "venue": rnd.choice(_VENUES)}
        if i % 3 == 0:
            p["doi"] = f"10.1000/bench.{i}"
        else:
            p["arxiv"] = f"{year % 100:02d}{month:02d}.{i % 100000:05d}"
        p["url"] = f"https://example.org/paper/{i}"
        if i % 2 == 0:
            p["abstract"] = _FILLER.format(t=t.lower(), s=s)
        if i % 4 == 0:
            p["keywords"] = [t.lower(), s.lower()]
        yield p


def write_bibtex(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i, p in enumerate(_papers(n)):
            fields = [f"  title = {{{p['title']}}}",
                      "  author = {" + " and ".join(f"{a.split()[1]}, {a.split()[0]}" for a in p["authors"]) + "}",
                      f"  year = {{{p['year']}}}", f"  month = {{{p['month']}}}",
                      f"  booktitle = {{{p['venue']}}}", f"  url = {{{p['url']}}}"]
            if "doi" in p:
                fields.append(f"  doi = {{{p['doi']}}}")
            if "arxiv" in p:
                fields.append(f"  eprint = {{{p['arxiv']}}}")
            if "abstract" in p:
                fields.append(f"  abstract = {{{p['abstract']}}}")
            if "keywords" in p:
                fields.append(f"  keywords = {{{', '.join(p['keywords'])}}}")
            fh.write(f"@inproceedings{{key{i},\n" + ",\n".join(fields) + "\n}\n\n")


def write_jsonl(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for p in _papers(n):
            fh.write(json.dumps(p) + "\n")


# -- phases (run in a child process each) ----------------------------------------------------------------------

def _phase(kind: str, path: str, store_kind: str) -> dict:
    from mfmkg.loaders.registry import parse

    if kind == "parse":
        t = time.perf_counter()
        n = sum(1 for _ in parse(path))
        seconds = time.perf_counter() - t
        return {"entries": n, "seconds": seconds}
    from mfmkg.loaders.pipeline import load_paths
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    if kind == "store":
        return _store_alone(path, store_kind)
    tmp = tempfile.mkdtemp(prefix="mfmkg-bench-") if store_kind == "disk" else None
    store = EmbeddedStore(tmp)
    ensure_loaded(store, ontology_files())
    if kind == "dump":
        result = _dump(store, path)
        store.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return result
    if kind == "classify":
        from mfmkg.loaders.classify import classify
        from mfmkg.loaders.vocabulary import load_vocabulary

        vocab = load_vocabulary(store)
        t = time.perf_counter()
        n = sum(1 for e in parse(path) if classify(e, vocab) is not None)
        seconds = time.perf_counter() - t
        store.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"entries": n, "seconds": seconds}
    t = time.perf_counter()
    report = load_paths(store, [path], source="bench", dry_run=kind == "dry")
    seconds = time.perf_counter() - t
    src = report.sources[0]
    feed = "fifo" if store.streams_paths else "queue"
    store.close()
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"entries": src.entries, "seconds": seconds, "status": src.status, "triples": src.triples,
            "asserted": src.asserted, "inferred": src.inferred, "errors": len(src.errors),
            "feed": feed}


def _dump(store, path: str) -> dict:
    """Load ``path`` and write the triples of its source graph next to it as N-Triples (for the store phase)."""
    from mfmkg.loaders.pipeline import load_paths
    from mfmkg.namespaces import source_graph

    report = load_paths(store, [path], source="bench")
    graph = source_graph("bench")
    Path(path).with_suffix(".nt").write_bytes(store.query_raw(
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}", "application/n-triples").body)
    return {"entries": report.sources[0].entries, "seconds": 0.0}


def _store_alone(path: str, store_kind: str) -> dict:
    """Time a fresh store reading the triples ``_dump`` wrote for ``path``, as the load's graph writer does."""
    from mfmkg.namespaces import source_graph
    from mfmkg.store.embedded import EmbeddedStore

    graph, nt = source_graph("bench"), Path(path).with_suffix(".nt")
    tmp = tempfile.mkdtemp(prefix="mfmkg-bench-") if store_kind == "disk" else None
    store = EmbeddedStore(tmp)
    try:
        t = time.perf_counter()
        store.load_path(str(nt), "application/n-triples", graph)
        seconds = time.perf_counter() - t
        return {"entries": None, "seconds": seconds, "triples": store.count(graph)}
    finally:
        store.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _child(kind: str, path: Path, store_kind: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.load_throughput", "--phase", kind, "--file", str(path),
                          "--store", store_kind], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise SystemExit(f"{kind} phase failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--store", choices=["memory", "disk"], default="memory")
    ap.add_argument("--formats", default="bibtex,jsonl")
    ap.add_argument("--out", type=Path, default=OUT, help="where the generated inputs are kept (default bench/out)")
    ap.add_argument("--phase", choices=["parse", "classify", "load", "dry", "dump", "store"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        result = _phase(args.phase, args.file, args.store)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    rows, ok = [], True
    for fmt in args.formats.split(","):
        path = args.out / (f"bench-{args.entries}.bib" if fmt == "bibtex" else f"bench-{args.entries}.jsonl")
        if not path.exists():
            (write_bibtex if fmt == "bibtex" else write_jsonl)(path, args.entries)
        parsed = _child("parse", path, args.store)
        classified = _child("classify", path, args.store)
        loaded = _child("load", path, args.store)
        dry = _child("dry", path, args.store)
        _child("dump", path, args.store)
        try:
            alone = _child("store", path, args.store)
        finally:
            path.with_suffix(".nt").unlink(missing_ok=True)
        counts = {"load": loaded["triples"], "dry": dry["triples"], "store": alone["triples"]}
        if len(set(counts.values())) != 1 or loaded["status"] != "loaded":
            raise SystemExit(f"{fmt}: the phases disagree: {loaded['status']}, triples {counts}")
        e2e = loaded["entries"] / loaded["seconds"]
        ratio = loaded["seconds"] / parsed["seconds"]
        floors = [x["seconds"] / parsed["seconds"] for x in (classified, dry, alone)]
        peak = max(parsed["peak_rss_mib"], loaded["peak_rss_mib"])
        ok &= e2e >= 5000 and ratio <= 2 and peak < 1024 and loaded["status"] == "loaded"
        rows.append((fmt, loaded["entries"], parsed["entries"] / parsed["seconds"], e2e, ratio, *floors,
                     parsed["peak_rss_mib"], loaded["peak_rss_mib"], loaded["triples"], loaded["status"],
                     loaded["feed"]))
    print(f"load throughput ({args.entries} generated entries, {args.store} store, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    head = ("format", "entries", "parse/s", "load/s", "ratio", "classify", "dry", "store", "parse MiB",
            "load MiB", "triples", "status", "feed")
    print("  ".join(f"{h:>9}" for h in head))
    for r in rows:
        print("  ".join([f"{r[0]:>9}", f"{r[1]:>9}", f"{r[2]:>9.0f}", f"{r[3]:>9.0f}", *(f"{x:>9.2f}" for x in r[4:8]),
                         f"{r[8]:>9.0f}", f"{r[9]:>9.0f}", f"{r[10]:>9}", f"{r[11]:>9}", f"{r[12]:>9}"]))
    print("relative to parse: classify = parse + classify alone; dry = the load without the store (dry run); "
          "store = the store alone reading the load's triples; the two sides overlap, so ratio >= max(dry, store)")
    print("feed: fifo = the store reads the stream without the GIL (Store.streams_paths), queue = through Python "
          "read calls")
    print("targets: load/s >= 5000, ratio <= 2, peak < 1024 MiB:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
