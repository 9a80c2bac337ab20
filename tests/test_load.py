"""Concurrency: a small run of ``bench/load_test.py`` against a real ``mfmkg serve`` (no timing assertions), and
the query sandbox under concurrent reads in the server process.

The full load test is ``python -m bench.load_test`` (50 clients x 1,000 requests).
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

from conftest import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import load_test  # noqa: E402

from mfmkg import sandbox  # noqa: E402
from mfmkg.errors import QueryTimeout  # noqa: E402

COUNT_ALL = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
JSON = "application/sparql-results+json"


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "disk"])
def test_mixed_load_has_no_errors(store):
    server = load_test.Server(threads=8, store=store)
    try:
        res = load_test.run_load(server.url, clients=20, requests_per_client=50, seed=7, timeout=60)
        problems = load_test.server_problems(server)
    finally:
        server.stop()
    summary = load_test.summary(res)
    assert summary["requests"] == 1000
    assert set(summary["kinds"]) == {"named", "sparql", "ui", "item"}
    assert not res.errors, [o.error for o in res.errors[:10]]
    assert not problems, problems


@pytest.mark.parametrize("kind, one_shot, writes", [
    ("memory", False, False), ("memory", True, False), ("memory", False, True), ("disk", False, False),
    ("disk", False, True)], ids=["memory", "memory-one-shot", "memory-writes", "disk", "disk-writes"])
def test_a_query_process_is_not_blocked_by_reads_in_the_server(kind, one_shot, writes, tmp_path):
    """The server reads its store in its own threads (named queries, resources, pages, the ontology watcher)
    while /sparql forks query processes. A fork that happens while such a read is inside the store must not
    leave the child waiting forever for a lock that no thread of the child will ever release: a cheap query
    would then end as a 503 "time limit exceeded". Forks happen for each query (``one_shot``: a precheck that
    cannot be sent to a reusable process, and the disk store) or after each write (``writes``: the in-memory
    store's reusable process is replaced). Bounded: at most 300 queries or 30 s, stops at the first hang."""
    from rdflib import Literal, URIRef

    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    store = EmbeddedStore(None if kind == "memory" else tmp_path / "data")
    ensure_loaded(store, ontology_files())
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            store.query(COUNT_ALL)

    def writer():
        i = 0
        while not stop.is_set():
            store.add([(URIRef(f"http://e/s{i}"), URIRef("http://e/p"), Literal(i))], "http://e/load")
            i += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
    if writes:
        threads.append(threading.Thread(target=writer, daemon=True))
    for t in threads:
        t.start()
    precheck = (lambda q: False) if one_shot else None
    forks, stuck, started = 0, 0, time.monotonic()
    try:
        while forks < 300 and time.monotonic() - started < 30 and not stuck:
            try:
                sandbox.query_raw(store, COUNT_ALL, JSON, timeout=2, precheck=precheck)
            except QueryTimeout:
                stuck += 1
            forks += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        store.close()
    assert not stuck, f"a query process hung (killed at the time limit) after {forks} queries"
