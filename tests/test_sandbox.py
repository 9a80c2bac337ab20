"""The forked query sandbox (mfmkg.sandbox) and its network backstop (mfmkg.netguard)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time

import pytest
from rdflib import Literal, URIRef

from mfmkg import netguard, query_pool, query_process, sandbox
from mfmkg.errors import LoadError, QueryRefused, QuerySyntaxError, QueryTimeout, StoreError
from mfmkg.store.base import RawResult
from mfmkg.store.embedded import EmbeddedStore

JSON = "application/sparql-results+json"


def child_pids() -> set[int]:
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as fh:
                    if re.search(rf"^PPid:\s+{me}$", fh.read(), re.M):
                        found.add(int(entry))
            except OSError:
                pass
    return found


def open_fds() -> dict[int, str]:
    """This process's descriptors and what each is (``pipe:[...]``, ``socket:[...]``, a path)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir used
            pass
    return out


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test here must leave no child process (zombies included) and no file descriptor behind."""
    sandbox.warm_up()
    children, fds = child_pids(), open_fds()
    yield
    assert child_pids() - children == set()
    assert {fd: what for fd, what in open_fds().items() if fd not in fds} == {}


@pytest.fixture
def mem_store():
    s = EmbeddedStore(None)
    s.add([(URIRef(f"http://e/s{i}"), URIRef(f"http://e/p{i % 7}"), Literal(i)) for i in range(200)], "http://e/g")
    yield s
    s.close()


def ok(body: bytes = b"x") -> RawResult:
    return RawResult(body, "text/csv", "select")


def test_result_comes_back():
    pid = os.getpid()
    result = sandbox.call(lambda: ok(str(os.getpid()).encode()), 5)
    assert result.kind == "select" and result.media_type == "text/csv"
    assert int(result.body) != pid  # it really ran in another process


def test_large_body_is_drained_while_written():
    body = os.urandom(8 * 1024 * 1024)  # far above the pipe buffer
    assert sandbox.call(lambda: ok(body), 10).body == body


@pytest.mark.parametrize("exc", [QuerySyntaxError("error at 1:3: expected x"), QueryRefused("no"),
                                 StoreError("disk gone"), LoadError("a.bib", 3, "doi", "malformed")])
def test_typed_errors_are_raised_again_as_the_same_class(exc):
    def job():
        raise exc

    with pytest.raises(type(exc)) as caught:
        sandbox.call(job, 5)
    assert type(caught.value) is type(exc)
    assert caught.value.detail == exc.detail and caught.value.status == exc.status
    if isinstance(exc, LoadError):
        assert (caught.value.path, caught.value.line, caught.value.field) == ("a.bib", 3, "doi")


def test_other_errors_become_sandbox_errors_not_4xx():
    def job():
        raise ValueError("a bug")

    with pytest.raises(sandbox.SandboxError, match="ValueError: a bug"):
        sandbox.call(job, 5)


def test_timeout_kills_and_reaps():
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="0.5 s"):
        sandbox.call(lambda: time.sleep(30) or ok(), 0.5)
    assert time.monotonic() - started < 3


def test_runaway_store_query_is_stopped(mem_store):
    with pytest.raises(QueryTimeout):
        sandbox.query_raw(mem_store, "SELECT (COUNT(*) AS ?c) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }",
                          JSON, timeout=0.5)
    assert b'"c"' in sandbox.query_raw(mem_store, "SELECT (COUNT(*) AS ?c) { ?s ?p ?o }", JSON, timeout=5).body


def test_child_that_dies_is_a_store_error():
    with pytest.raises(StoreError, match="signal 9"):
        sandbox.call(lambda: os.kill(os.getpid(), signal.SIGKILL), 5)


def test_child_is_reaped_when_the_parent_thread_fails(monkeypatch):
    def broken(*args):
        raise RuntimeError("the waiting thread failed")

    monkeypatch.setattr(sandbox, "read_frame", broken)
    with pytest.raises(RuntimeError, match="waiting thread failed"):
        sandbox.call(lambda: time.sleep(30) or ok(), 5)
    # no_leftovers checks the child is gone and the pipe closed


def test_child_ignores_the_servers_signal_handlers():
    previous = signal.signal(signal.SIGHUP, lambda *a: None)  # e.g. `mfmkg serve` reloads on SIGHUP
    try:
        with pytest.raises(StoreError, match="signal 1"):
            sandbox.call(lambda: os.kill(os.getpid(), signal.SIGHUP) or time.sleep(5) or ok(), 5)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_concurrent_calls_get_their_own_answers():
    answers, errors = {}, []

    def worker(i):
        try:
            answers[i] = sandbox.call(lambda: time.sleep(0.05 * (i % 4)) or ok(f"answer {i}".encode()), 10).body
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert answers == {i: f"answer {i}".encode() for i in range(16)}


def test_child_closes_the_pipes_of_other_queries():
    slow = threading.Thread(target=lambda: sandbox.call(lambda: time.sleep(1) or ok(), 5))
    slow.start()
    time.sleep(0.2)

    def job():
        still_open = []
        for fd in query_process.pipe_fds:
            try:
                os.fstat(fd)
                still_open.append(fd)
            except OSError:
                pass
        return ok(repr((len(query_process.pipe_fds), len(still_open))).encode())

    try:
        registered, still_open = eval(sandbox.call(job, 5).body)  # noqa: S307 - our own repr of two ints
    finally:
        slow.join()
    assert registered == 3  # our write end, plus both ends of the slow query's pipe at fork time...
    assert still_open == 1  # ...of which only our own write end stays open in the child


def test_not_forkable_store_runs_in_process(mem_store, monkeypatch):
    monkeypatch.setattr(mem_store, "forkable", False)
    pids = []
    sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=5, precheck=lambda q: pids.append(os.getpid()))
    assert pids == [os.getpid()]


def test_precheck_runs_in_the_child_and_can_refuse(mem_store):
    def precheck(query):
        raise QueryRefused(f"refused in {os.getpid()}")

    with pytest.raises(QueryRefused) as caught:
        sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=5, precheck=precheck)
    assert caught.value.detail != f"refused in {os.getpid()}"


# -- the network backstop ----------------------------------------------------------------------------

needs_seccomp = pytest.mark.skipif(not netguard.supported(), reason="seccomp filter only on Linux x86_64/aarch64")


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock, f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


@needs_seccomp
def test_netguard_denies_sockets_in_the_child_only():
    def job():
        assert netguard.deny_sockets()
        try:
            socket.socket()
        except PermissionError:
            return ok(b"denied")
        return ok(b"allowed")

    assert sandbox.call(job, 5).body == b"denied"
    socket.socket().close()  # the parent is untouched


@needs_seccomp
def test_query_that_slips_past_the_check_cannot_reach_the_network(mem_store, listener):
    sock, url = listener
    query = f"SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"
    with pytest.raises(StoreError):  # precheck says "no network needed": the child may not open a socket
        sandbox.query_raw(mem_store, query, JSON, timeout=5, precheck=lambda q: False)
    time.sleep(0.1)
    with pytest.raises(BlockingIOError):
        sock.accept()
    # control: with the network allowed, the same query does connect (and then waits for an answer)
    with pytest.raises(QueryTimeout):
        sandbox.query_raw(mem_store, query, JSON, timeout=1, precheck=lambda q: True)
    conn, _ = sock.accept()
    conn.close()


ORPHAN_SCRIPT = """
import os, re, sys, threading, time
from mfmkg import sandbox
from mfmkg.store.base import RawResult
threading.Thread(target=lambda: sandbox.call(lambda: time.sleep(60) or RawResult(b"", "text/csv", "select"), 60),
                 daemon=True).start()
time.sleep(0.5)
me = os.getpid()
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            if re.search(rf"^PPid:\\s+{me}$", open(f"/proc/{entry}/status").read(), re.M):
                print(entry, flush=True)
        except OSError:
            pass
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return re.search(r"^State:\s+Z", fh.read(), re.M) is None  # a zombie has ended
    except OSError:
        return False


def test_child_dies_with_its_server():
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(server.stdout.readline())
        assert _alive(child)
        server.kill()  # SIGKILL: the server gets no chance to clean up
        server.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        server.kill()
        server.wait(10)


def test_child_runs_under_a_cpu_limit():
    import resource

    body = sandbox.call(lambda: ok(repr(resource.getrlimit(resource.RLIMIT_CPU)).encode()), 2.5).body
    assert eval(body) == (6, 7)  # noqa: S307 - our own repr: ceil(2 * 2.5) + 1 seconds soft, one more hard


# -- forks and the store's readers-writer lock ----------------------------------------------------------------

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
DEEP = "SELECT * WHERE { " + "{ SELECT * WHERE { " * 100_000 + "?s ?p ?o" + " } }" * 100_000 + " }"  # SIGSEGV


def count_of(body: bytes) -> int:
    return int(json.loads(body)["results"]["bindings"][0]["n"]["value"])


def test_a_one_shot_fork_waits_for_reads_in_flight(mem_store):
    """Bug: a fork while another thread was inside pyoxigraph's in-memory storage left the child waiting for ever
    on a mutex no thread of the child would release (the time limit then made a cheap query a 503). The fork now
    happens under the store's lock held exclusive, so no read is in flight at that instant."""
    stop, stuck = threading.Event(), []

    def reader():
        while not stop.is_set():
            mem_store.query(COUNT)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for _ in range(150):
            try:
                sandbox.call(lambda: mem_store.query_raw(COUNT, JSON), 2, store=mem_store)
            except QueryTimeout:
                stuck.append(1)
                break
    finally:
        stop.set()
        for t in readers:
            t.join(30)
    assert not stuck


def test_the_store_lock_is_shared_reentrant_and_exclusive_for_forks():
    from mfmkg.store.embedded import ReadWriteLock

    lock, order = ReadWriteLock(), []
    entered = threading.Event()

    def holder():
        with lock.shared():
            entered.set()
            time.sleep(0.3)
            with lock.shared():  # reentrant even while a fork waits for exclusive: no deadlock
                order.append("inner read")
        order.append("read done")

    t = threading.Thread(target=holder)
    t.start()
    entered.wait(5)
    with lock.exclusive():
        order.append("fork")
    t.join(5)
    assert order == ["inner read", "read done", "fork"]
    with lock.shared(), pytest.raises(RuntimeError):
        with lock.exclusive():
            pass


# -- without a time limit, still in a query process ----------------------------------------------------------

def refuse_with_pid(query):
    raise QueryRefused(str(os.getpid()))


@pytest.mark.parametrize("timeout", [0, None])
def test_no_time_limit_still_runs_in_a_query_process(mem_store, timeout):
    """Bug: QUERY_TIMEOUT=0 ran the query in the server process. A picklable precheck goes to a reusable
    process, a lambda to a one-shot child: both are other processes."""
    for precheck in (refuse_with_pid, lambda q: refuse_with_pid(q)):
        with pytest.raises(QueryRefused) as caught:
            sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=timeout, precheck=precheck)
        assert caught.value.detail != str(os.getpid())


def test_a_crashing_query_without_time_limit_kills_only_its_process(mem_store):
    """Bug: QUERY_TIMEOUT=0 ran queries in the server process, where pyoxigraph's stack overflow on a deep query
    (SIGSEGV) killed the whole server (here: the test process)."""
    for timeout in (0, None, 5):
        with pytest.raises(StoreError, match="signal 11"):
            sandbox.query_raw(mem_store, DEEP, JSON, timeout=timeout)
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=0).body) == 200


def test_one_shot_child_without_time_limit_has_no_cpu_limit():
    import resource

    body = sandbox.call(lambda: ok(repr(resource.getrlimit(resource.RLIMIT_CPU)).encode()), None).body
    assert eval(body)[0] == resource.getrlimit(resource.RLIMIT_CPU)[0]  # noqa: S307 - our own repr


# -- reusable query processes (in-memory store) -------------------------------------------------------------

def test_an_in_memory_store_reuses_its_query_process(mem_store):
    assert sandbox.worker_pids() == set()
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 200
    first = sandbox.worker_pids()
    assert len(first) == 1 and os.getpid() not in first
    for _ in range(5):
        assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 200
    assert sandbox.worker_pids() == first  # no fork per query


def test_a_write_is_visible_to_the_next_query(mem_store):
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 200
    old = sandbox.worker_pids()
    mem_store.add([(URIRef("http://e/new"), URIRef("http://e/p"), Literal(1))], "http://e/g")
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 201
    mem_store.drop_graph("http://e/g")
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 0
    assert not old & sandbox.worker_pids()  # the process of the old data version is gone


def test_writes_and_queries_concurrently_never_show_older_data(mem_store):
    """Each query sees at least every write completed before it started, and no query errs or hangs."""
    done, errors, seen = threading.Event(), [], []
    written = [200]

    def writer():
        for i in range(30):
            mem_store.add([(URIRef(f"http://e/w{i}"), URIRef("http://e/p"), Literal(i))], "http://e/w")
            written.append(written[-1] + 1)
            time.sleep(0.02)
        done.set()

    def reader():
        try:
            while not done.is_set():
                floor = written[-1]
                n = count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=10).body)
                seen.append(n)
                assert n >= floor, (n, floor)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert seen and count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 230


def test_a_runaway_is_killed_and_the_next_query_answers(mem_store):
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 200
    (worker,) = sandbox.worker_pids()
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="0.5 s"):
        sandbox.query_raw(mem_store, "SELECT (COUNT(*) AS ?c) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }",
                          JSON, timeout=0.5)
    assert time.monotonic() - started < 3
    assert not _alive(worker) and worker not in child_pids()  # SIGKILLed and reaped before the answer
    assert count_of(sandbox.query_raw(mem_store, COUNT, JSON, timeout=5).body) == 200
    assert sandbox.worker_pids() and worker not in sandbox.worker_pids()


def test_typed_errors_keep_the_process_and_crashes_lose_it(mem_store):
    with pytest.raises(QuerySyntaxError):
        sandbox.query_raw(mem_store, "SELECT * {", JSON, timeout=5)
    (worker,) = sandbox.worker_pids()
    with pytest.raises(QueryRefused):
        sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=5, precheck=refuse_with_pid)
    assert sandbox.worker_pids() == {worker}
    with pytest.raises(StoreError, match="signal 11"):
        sandbox.query_raw(mem_store, DEEP, JSON, timeout=5)
    assert worker not in sandbox.worker_pids() and worker not in child_pids()


def test_concurrent_queries_get_their_own_answers_from_the_pool(mem_store):
    answers, errors = {}, []

    def worker(i):
        try:
            q = f"SELECT (COUNT(*) AS ?n) WHERE {{ ?s ?p ?o FILTER(?o >= {i}) }}"
            answers[i] = count_of(sandbox.query_raw(mem_store, q, JSON, timeout=10).body)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert answers == {i: 200 - i for i in range(12)}
    assert len(sandbox.worker_pids()) <= query_pool.MAX_IDLE


def test_idle_processes_end_after_a_while(mem_store, monkeypatch):
    monkeypatch.setattr(query_pool, "IDLE_SECONDS", 0.3)
    sandbox.query_raw(mem_store, COUNT, JSON, timeout=5)
    (worker,) = sandbox.worker_pids()
    deadline = time.monotonic() + 5
    while worker in child_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker not in child_pids() and sandbox.worker_pids() == set()


def cpu_limit_and_use(query):
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    raise QueryRefused(repr((resource.getrlimit(resource.RLIMIT_CPU), usage.ru_utime + usage.ru_stime)))


def test_each_query_of_a_reusable_process_has_a_cpu_limit(mem_store):
    import resource

    for timeout in (2.5, 4):
        with pytest.raises(QueryRefused) as caught:
            sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=timeout, precheck=cpu_limit_and_use)
        (soft, hard), used = eval(caught.value.detail)  # noqa: S307 - our own repr
        assert used + 2 * timeout < soft <= used + 2 * timeout + 2
        assert hard == resource.getrlimit(resource.RLIMIT_CPU)[1]
    with pytest.raises(QueryRefused) as caught:
        sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=None, precheck=cpu_limit_and_use)
    assert eval(caught.value.detail)[0][0] == resource.getrlimit(resource.RLIMIT_CPU)[1]  # noqa: S307


def test_a_reusable_process_holds_no_inherited_socket(mem_store, listener):
    client = socket.create_connection(listener[0].getsockname())
    try:
        sandbox.query_raw(mem_store, "ASK {}", JSON, timeout=5)
        (worker,) = sandbox.worker_pids()
        links = [os.readlink(f"/proc/{worker}/fd/{fd}") for fd in os.listdir(f"/proc/{worker}/fd")]
    finally:
        client.close()
    assert not [link for link in links if link.startswith("socket:")]
    assert len([link for link in links if link.startswith("pipe:")]) <= 2 + 3  # its own two (stdio may be pipes)


def no_network_needed(query):
    return False


def network_needed(query):
    return True


@needs_seccomp
def test_a_reusable_process_cannot_reach_the_network(mem_store, listener):
    sock, url = listener
    query = f"SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"
    with pytest.raises(StoreError):
        sandbox.query_raw(mem_store, query, JSON, timeout=5, precheck=no_network_needed)
    assert sandbox.worker_pids()  # it did run in a reusable process
    time.sleep(0.1)
    with pytest.raises(BlockingIOError):
        sock.accept()
    # a query that needs the network goes to a one-shot child, which may connect
    with pytest.raises(QueryTimeout):
        sandbox.query_raw(mem_store, query, JSON, timeout=1, precheck=network_needed)
    conn, _ = sock.accept()
    conn.close()


POOL_ORPHAN_SCRIPT = """
import os, time
from rdflib import Literal, URIRef
from mfmkg import sandbox
from mfmkg.store.embedded import EmbeddedStore
store = EmbeddedStore(None)
store.add([(URIRef("http://e/s"), URIRef("http://e/p"), Literal(1))], "http://e/g")
sandbox.query_raw(store, "ASK { ?s ?p ?o }", "application/sparql-results+json", timeout=60)
print(*sandbox.worker_pids(), flush=True)
time.sleep(60)
"""


def test_reusable_processes_die_with_their_server():
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", POOL_ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in server.stdout.readline().split()]
        assert workers and all(_alive(w) for w in workers)
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers)
    finally:
        server.kill()
        server.wait(10)


def test_a_long_flat_query_does_not_overflow_a_reusable_process(mem_store):
    """10,000 UNIONs overflow an 8 MiB thread stack in pyoxigraph (SIGSEGV); reusable processes run queries on
    the sandbox's large-stack thread. Also checked: the same query still only crashes a one-shot child."""
    union = "SELECT (COUNT(*) AS ?n) WHERE { " + " UNION ".join(["{ ?s <http://e/p0> ?o }"] * 10_000) + " }"
    assert count_of(sandbox.query_raw(mem_store, union, JSON, timeout=30).body) == 29 * 10_000
    with pytest.raises(StoreError, match="signal 11"):
        sandbox.query_raw(mem_store, union, JSON, timeout=30, precheck=lambda q: False)


def test_a_one_shot_child_closes_inherited_sockets(listener):
    client = socket.create_connection(listener[0].getsockname())

    def job():
        sockets = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except OSError:  # the descriptor listdir used
                pass
        return ok(repr(sockets).encode())

    try:
        assert sandbox.call(job, 5).body == b"0"
    finally:
        client.close()
