"""The forked query sandbox (mfmkg.sandbox) and its network backstop (mfmkg.netguard)."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time

import pytest
from rdflib import Literal, URIRef

from mfmkg import netguard, sandbox
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


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test here must leave no child process (zombies included) and no file descriptor behind."""
    sandbox.warm_up()
    children, fds = child_pids(), open_fds()
    yield
    assert child_pids() - children == set()
    assert open_fds() - fds == set()


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

    monkeypatch.setattr(sandbox, "_read_frame", broken)
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
        for fd in sandbox._pipe_fds:
            try:
                os.fstat(fd)
                still_open.append(fd)
            except OSError:
                pass
        return ok(repr((len(sandbox._pipe_fds), len(still_open))).encode())

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
