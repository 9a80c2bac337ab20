"""Run queries in forked child processes with a hard time limit: pyoxigraph has no timeout or cancellation.

Every query of a forkable store runs in a child process, also with ``timeout=None`` (no time limit): a crash of
the query engine (pyoxigraph overflows its stack on very deep nesting) then ends only the child. The parent waits
for the answer until the deadline and SIGKILLs the child on timeout. Two kinds of child:

**One-shot child** (``call``; on-disk stores, and queries that need the network). The parent creates a pipe and
forks; the child runs the job (``store.query_raw``), writes one frame to the pipe (header length and body length,
a JSON header with the result kind, media type and truncation flag, or a typed error as module, class and detail;
then the body) and leaves with ``os._exit``, so no atexit handler, finaliser or store destructor runs in the child:
a copy of an on-disk store must never be flushed or closed. The parent always reaps the child with ``waitpid``,
also when its own thread is interrupted by an exception, so no zombie is left. Fork is copy-on-write: about 5 ms
for a server on an on-disk store, and the child sees the store as it was at that instant without copying it.

**Reusable query process** (stores with ``reuse_query_processes``, i.e. in memory): a process forked from the
store answers query after query over a pipe; ``query_pool.py`` says why and how. What runs inside either kind
of process, and the frame both sides speak, is in ``query_process.py``.

Fork in a threaded server (waitress). Only the forking thread exists in the child, and a lock another thread
held at that instant stays held there. Hence (1) the store's readers-writer lock: every store operation holds it
shared and every fork here holds it exclusive (``store.fork_guard()``), so no pyoxigraph mutex of the store is
held at a fork (without it, a fork while another thread read the in-memory store left the child blocked for ever,
and the time limit turned a cheap query into a 503); (2) the child touches only the store, the result writers
(their plugins are imported in the parent first, see ``warm_up``) and the pipes: no logging, no threads of ours.
(Python 3.12+ warns about fork in a threaded process for exactly this reason.) RocksDB's own background threads
take its mutex outside any operation of ours; a one-shot child forked at such an instant (only right after
writes, when RocksDB flushes or compacts) can still block, and the time limit ends it.

Concurrency of one-shot children: creating the pipe and forking happen under one lock, and each child closes the
pipe ends of the other queries in flight (``query_process.pipe_fds``) and of the reusable processes
(``query_process.worker_fds``), and every socket it inherited, so no child holds another query's pipe or a
client's connection open. The frame carries its own length, so the parent never waits for EOF anyway.

A child never outlives its server: it asks the kernel for SIGKILL when the thread that forked it ends
(``PR_SET_PDEATHSIG``; so also when the server is SIGKILLed or exits while a daemon thread waits), and a one-shot
child runs under a CPU limit of twice the time limit (``RLIMIT_CPU``) whatever happens to the parent.
Also in the child, before the query: ``netguard.deny_sockets()`` unless the query calls an allowlisted SERVICE, so
a query that slipped past the SERVICE check still cannot reach the network.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from typing import Callable

from mfmkg import netguard
from mfmkg.errors import StoreError
from mfmkg.query_pool import pack_request, pool_of, prestart, worker_pids
from mfmkg.query_process import (SandboxError, decode, fds_lock, kill, one_shot_main, pipe_fds, read_frame,
                                 warm_up)
from mfmkg.store.base import RawResult, Store

__all__ = ["SandboxError", "call", "prestart", "query_raw", "warm_up", "worker_pids"]


def _limit(timeout: float | None) -> float | None:
    return float(timeout) if timeout is not None and timeout > 0 else None


def query_raw(store: Store, sparql: str, media_type: str, *, timeout: float | None,
              precheck: Callable[[str], bool] | None = None, **kwargs) -> RawResult:
    """``store.query_raw`` in a query process killed after ``timeout`` seconds (None or 0: no time limit, still
    in a query process). A store that is not forkable (remote) runs the query directly.

    ``precheck(sparql)`` runs first, in the query process when there is one so that its cost counts against the
    limit; it may raise a typed error, and returns True when the query needs the network (an allowlisted SERVICE).
    """
    limit = _limit(timeout)

    def job(isolated: bool) -> RawResult:
        needs_network = precheck(sparql) if precheck else False
        if isolated and not needs_network:
            netguard.deny_sockets()
        return store.query_raw(sparql, media_type, **kwargs)

    if not store.forkable:
        return job(False)
    if getattr(store, "reuse_query_processes", False):
        request = pack_request(sparql, media_type, kwargs, precheck, limit)
        if request is not None:
            result = pool_of(store).run(store, request, limit)
            if result is not None:
                return result
    return call(lambda: job(True), limit, store=store)


def call(job: Callable[[], RawResult], timeout: float | None, *, store: Store | None = None) -> RawResult:
    """Run ``job`` in a one-shot child and return its result; QueryTimeout after ``timeout`` seconds (None or 0:
    no limit). With ``store``, the fork happens under ``store.fork_guard()``."""
    warm_up()
    timeout = _limit(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    parent = os.getpid()
    guard = store.fork_guard() if hasattr(store, "fork_guard") else nullcontext()
    with guard, fds_lock:
        rfd, wfd = os.pipe()
        pipe_fds.update((rfd, wfd))
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (rfd, wfd):
                pipe_fds.discard(fd)
                os.close(fd)
            raise StoreError(f"cannot start a query process: {exc}") from exc
        if pid == 0:
            if hasattr(store, "after_fork_in_child"):
                store.after_fork_in_child()
            one_shot_main(job, wfd, parent, timeout)  # never returns
        pipe_fds.discard(wfd)
        os.close(wfd)
    reaped = False
    try:
        frame = read_frame(rfd, deadline, timeout)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # SIGCHLD ignored somewhere: the kernel reaped it, the status is lost
            status = 0
        reaped = True
        return decode(frame, status)
    finally:
        with fds_lock:
            pipe_fds.discard(rfd)
            os.close(rfd)
        if not reaped:
            kill(pid)
