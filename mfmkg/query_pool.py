"""Reusable query processes, for stores with ``reuse_query_processes`` (in memory; ``sandbox.py`` is the entry point).

Forking a process that holds a large graph in memory costs page-table copying in proportion to its size (at 100k
publications it made a first ``/sparql`` call 4x slower than the query itself). So a process forked from the store
answers query after query: the parent sends it each query over a pipe (pickled: text, media type, dataset, row cap,
precheck, time limit) and reads the same frame as a one-shot child's (``query_process.py``). Its rules:

* One pool per store. A query takes an idle process, or asks for a new one, forked by the sandbox's background
  thread (``_Background``: the only thread that forks them, because ``PR_SET_PDEATHSIG`` fires when the *thread*
  that forked a process ends, and that thread lives as long as the server). The pool grows with the number of
  concurrent queries; at most ``MAX_IDLE`` idle processes are kept, each retired after ``MAX_USES`` queries or
  ``IDLE_SECONDS`` without one, so an idle server holds no query process.
* Data versions. A process is forked under the store's ``fork_guard`` (no operation in flight) and records the
  store's ``data_version()`` at that instant, so its copy of the data is exactly that version. Every write bumps
  the version (inside the same lock); the store's write hook then discards the idle processes, and a query only
  ever takes a process whose version is the store's current one. So a query never sees data older than the last
  write that completed before it started. After a write, a fresh process is forked in the background once writes
  have been quiet for ``PREFORK_AFTER_WRITE`` seconds (if the pool was in use), else at the next query.
* The hard kill guarantee is unchanged: a process that does not answer by the deadline is SIGKILLed and reaped
  by the waiting thread (and the next query gets a fresh process); one that crashes becomes ``StoreError``; one
  that raised an error that is not ours is retired. Each query sets its own CPU limit: ``RLIMIT_CPU`` soft limit
  at the CPU time used so far plus twice the time limit (SIGXCPU ends it, whatever happens to the parent).
* The process installs ``netguard.deny_sockets()`` once when it starts. A query whose precheck says it needs the
  network (an allowlisted SERVICE) gets the answer "needs network" and runs in a one-shot child instead. A
  precheck that cannot be pickled (a lambda) also means a one-shot child.
* It closes every inherited descriptor except its two pipes and stdin/out/err (client and listening sockets,
  other queries' pipes, spooled request bodies), runs ``gc.freeze()`` so the collector does not write to (and so
  copy) every inherited object, and leaves with ``os._exit`` when the parent closes its request pipe.
* Its queries run on the background thread's stack, reserved at ``STACK_BYTES`` (256 MiB of address space), so
  long flat queries (10,000 UNIONs) that overflow an ordinary 8 MiB thread stack in pyoxigraph run to their answer
  or their time limit instead of crashing the process. (Deep *nesting* is refused before, by the endpoint.)

Why not on disk: a fork of a server on an on-disk store is cheap (the data is in files, not in its memory), and a
long-lived copy of RocksDB's in-memory state could look for files that the server's compactions have removed.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import pickle
import select
import signal
import threading
import time
import weakref
from typing import Callable

from mfmkg.errors import StoreError
from mfmkg.query_process import (REQUEST, decode, fds_lock, kill, poll_ms, read_frame, reusable_main, timed_out,
                                 warm_up, worker_fds)
from mfmkg.store.base import RawResult, Store

#: Idle reusable query processes kept per store, queries one process answers before it is retired, seconds an
#: idle process is kept, and seconds without writes before a fresh process is forked after a write.
MAX_IDLE = 4
MAX_USES = 1000
IDLE_SECONDS = 5.0
PREFORK_AFTER_WRITE = 0.5
#: Stack of the thread that forks reusable query processes, on which their queries run: pyoxigraph recurses over
#: the query's algebra, and a long flat query (10,000 UNIONs, thousands of BINDs or VALUES) overflows the 8 MiB of
#: an ordinary thread. Address space only: pages are used as the recursion reaches them.
STACK_BYTES = 256 * 1024 * 1024

log = logging.getLogger(__name__)


def pack_request(sparql: str, media_type: str, kwargs: dict, precheck, timeout: float | None) -> bytes | None:
    """The request for a reusable process; None when it cannot be pickled (a lambda as precheck)."""
    try:
        data = pickle.dumps((sparql, media_type, kwargs, precheck, timeout), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    return REQUEST.pack(len(data)) + data


def _send(fd: int, data: bytes, deadline: float | None, timeout: float | None) -> bool:
    """Write the request within the deadline; False when the process is gone (broken pipe)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
    view = memoryview(data)
    while view:
        if not poller.poll(poll_ms(deadline, timeout)):
            continue
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue
        except BrokenPipeError:
            return False
    return True


class _Worker:
    __slots__ = ("pid", "tx", "rx", "version", "uses", "idle_since")

    def __init__(self, pid: int, tx: int, rx: int, version: int):
        self.pid, self.tx, self.rx, self.version, self.uses, self.idle_since = pid, tx, rx, version, 0, 0.0


def _close_worker_fds(worker: _Worker) -> None:
    with fds_lock:
        for fd in (worker.tx, worker.rx):
            if fd in worker_fds:
                worker_fds.discard(fd)
                os.close(fd)


def _end(worker: _Worker) -> int:
    """Close the pipes, SIGKILL and reap; the wait status."""
    _close_worker_fds(worker)
    return kill(worker.pid)


def _spawn(store: Store) -> _Worker:
    """Fork a reusable query process of ``store`` (called in the background thread)."""
    warm_up()
    parent = os.getpid()
    with store.fork_guard(), fds_lock:
        version = store.data_version()
        fds = os.pipe() + os.pipe()  # requests: (worker reads, we write); answers: (we read, worker writes)
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise StoreError(f"cannot start a query process: {exc}") from exc
        if pid == 0:
            store.after_fork_in_child()
            reusable_main(store, fds[0], fds[3], parent)  # never returns
        os.close(fds[0])
        os.close(fds[3])
        os.set_blocking(fds[1], False)
        worker_fds.update((fds[1], fds[2]))
    return _Worker(pid, fds[1], fds[2], version)


class _Background:
    """The one thread that forks reusable query processes (``PR_SET_PDEATHSIG`` fires when the thread that forked
    a process ends: this one lives as long as the server) and retires them: a queue of timed tasks."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            if self._thread is None or self._pid != os.getpid():
                self._heap, self._pid = [], os.getpid()
                self._thread = threading.Thread(target=self._loop, name="mfmkg-query-processes", daemon=True)
                previous = threading.stack_size()
                try:  # the processes it forks run their queries on this thread's stack (reserved, not used, here)
                    threading.stack_size(STACK_BYTES)
                except (ValueError, RuntimeError):
                    pass
                try:
                    self._thread.start()
                finally:
                    threading.stack_size(previous)
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), fn))
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        fn = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            try:
                fn()
            except Exception:  # this thread must never end: it is the parent of the query processes
                log.exception("query process housekeeping failed")


_background = _Background()
_pools_lock = threading.Lock()
_pools: weakref.WeakSet = weakref.WeakSet()


def pool_of(store: Store) -> "_Pool":
    with _pools_lock:
        pool = store.__dict__.get("_sandbox_pool")
        if pool is None:
            pool = store.__dict__["_sandbox_pool"] = _Pool(store)
            _pools.add(pool)
        return pool


def prestart(store: Store) -> None:
    """Fork a reusable query process for ``store`` now, in the background (e.g. when a server starts), so the
    first query does not wait for the fork. Does nothing for stores without reusable query processes."""
    if getattr(store, "forkable", False) and getattr(store, "reuse_query_processes", False):
        pool_of(store).prefork_soon(0.0)


def worker_pids() -> set[int]:
    """Process ids of the reusable query processes alive now (idle or answering), for tests and diagnostics."""
    with _pools_lock:
        pools = list(_pools)
    return {w.pid for pool in pools for w in pool.workers()}


class _Pool:
    """The reusable query processes of one store; see the module docstring."""

    def __init__(self, store: Store):
        self._store = weakref.ref(store)
        self._cond = threading.Condition()
        self.idle: list[_Worker] = []  # most recently used last
        self.busy: set[_Worker] = set()
        self.forking = self.waiting = self.retiring = self.fork_failures = 0
        self.last_error = ""
        self.closed = False
        self.expiry_scheduled = False
        self.prefork_due: float | None = None
        self.prefork_scheduled = False
        store.on_write(self._written)
        store.on_close(self.close)

    def workers(self) -> list[_Worker]:
        with self._cond:
            return [*self.idle, *self.busy]

    # -- a query --------------------------------------------------------------------------------------------
    def run(self, store: Store, request: bytes, timeout: float | None) -> RawResult | None:
        """The answer of a reusable process; None when the query needs the network (run it in a one-shot child)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for attempt in (1, 2):
            worker = self._checkout(store, deadline, timeout)
            try:
                sent = _send(worker.tx, request, deadline, timeout)
                frame = read_frame(worker.rx, deadline, timeout) if sent else None
            except BaseException:  # the time limit, or this thread interrupted: the process must not run on
                self._discard(worker)
                raise
            if frame is None:
                status = self._discard(worker)
                if not sent and attempt == 1:  # it died while idle (OOM killer?): try a fresh one
                    continue
                return decode(None, status)
            header = frame[0]
            if header.get("needs_network"):
                self._checkin(store, worker)
                return None
            if header["ok"] or header.get("typed"):
                self._checkin(store, worker)
            else:  # an error that is not ours: do not trust this process with another query
                self._discard(worker)
            return decode(frame, 0)
        raise AssertionError("unreachable")

    def _checkout(self, store: Store, deadline: float | None, timeout: float | None) -> _Worker:
        with self._cond:
            failures = self.fork_failures
            while True:
                if self.closed:
                    raise StoreError("the store was closed")
                version = store.data_version()
                stale = [w for w in self.idle if w.version != version]
                if stale:
                    self.idle = [w for w in self.idle if w.version == version]
                    self._retire(stale)
                if self.idle:
                    worker = self.idle.pop()
                    self.busy.add(worker)
                    return worker
                if self.fork_failures != failures:
                    raise StoreError(f"cannot start a query process: {self.last_error}")
                self.waiting += 1
                try:
                    if self.waiting > self.forking:
                        self.forking += 1
                        _background.schedule(0.0, functools.partial(self._fork, store))
                    if deadline is None:
                        self._cond.wait()
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise timed_out(timeout)
                        self._cond.wait(remaining)
                finally:
                    self.waiting -= 1

    def _checkin(self, store: Store, worker: _Worker) -> None:
        with self._cond:
            self.busy.discard(worker)
            worker.uses += 1
            if (self.closed or worker.version != store.data_version() or worker.uses >= MAX_USES
                    or len(self.idle) >= MAX_IDLE):
                self._retire([worker])
                return
            worker.idle_since = time.monotonic()
            self.idle.append(worker)
            if not self.expiry_scheduled:
                self.expiry_scheduled = True
                _background.schedule(IDLE_SECONDS, self._expire)
            self._cond.notify_all()

    def _discard(self, worker: _Worker) -> int:
        """End a process now, in this thread (after a timeout the caller must not answer before it is gone)."""
        with self._cond:
            self.busy.discard(worker)
            if worker in self.idle:
                self.idle.remove(worker)
        return _end(worker)

    def _retire(self, workers: list[_Worker]) -> None:
        """Under ``_cond``: end idle processes in the background (a big process takes a while to exit)."""
        if workers:
            self.retiring += len(workers)
            _background.schedule(0.0, functools.partial(self._end_retired, workers))

    def _end_retired(self, workers: list[_Worker]) -> None:
        try:
            for worker in workers:
                _end(worker)
        finally:
            with self._cond:
                self.retiring -= len(workers)
                self._cond.notify_all()

    # -- background tasks -----------------------------------------------------------------------------------
    def _fork(self, store: Store, prefork: bool = False) -> None:
        worker, error, orphan = None, None, None
        with self._cond:  # a query that asked for this fork may have found a process meanwhile
            needed = prefork or self.waiting > len(self.idle) + self.forking - 1
        try:
            if needed and not self.closed:
                worker = _spawn(store)
        except Exception as exc:  # reported to the waiting queries as StoreError
            error = exc
        with self._cond:
            if error is not None:
                self.fork_failures += 1
                self.last_error = str(error)
            elif worker is not None:
                if self.closed or (len(self.idle) >= MAX_IDLE and not self.waiting):
                    orphan = worker
                else:
                    worker.idle_since = time.monotonic()
                    self.idle.append(worker)
                    if not self.expiry_scheduled:
                        self.expiry_scheduled = True
                        _background.schedule(IDLE_SECONDS, self._expire)
            if orphan is None:
                self.forking -= 1
                self._cond.notify_all()
        if orphan is not None:
            _end(orphan)
            with self._cond:
                self.forking -= 1
                self._cond.notify_all()

    def _expire(self) -> None:
        with self._cond:
            now = time.monotonic()
            old = [w for w in self.idle if now - w.idle_since >= IDLE_SECONDS * 0.99]
            self.idle = [w for w in self.idle if w not in old]
            if self.idle and not self.closed:
                _background.schedule(max(0.01, min(w.idle_since for w in self.idle) + IDLE_SECONDS - now),
                                     self._expire)
            else:
                self.expiry_scheduled = False
            self.retiring += len(old)
        try:
            for worker in old:
                _end(worker)
        finally:
            with self._cond:
                self.retiring -= len(old)
                self._cond.notify_all()

    def _written(self, version: int) -> None:
        """The store's write hook (called inside the write's lock: must not block). Idle processes hold an older
        version now; and a pool in use gets a fresh process once writes are quiet."""
        with self._cond:
            in_use = bool(self.idle or self.busy)
            stale, self.idle = self.idle, []
            self._retire(stale)
        if in_use:
            self.prefork_soon(PREFORK_AFTER_WRITE)

    def prefork_soon(self, delay: float) -> None:
        with self._cond:
            if self.closed:
                return
            self.prefork_due = time.monotonic() + delay
            if not self.prefork_scheduled:
                self.prefork_scheduled = True
                _background.schedule(delay, self._prefork)

    def _prefork(self) -> None:
        with self._cond:
            due, store = self.prefork_due, self._store()
            if self.closed or due is None or store is None:
                self.prefork_scheduled = False
                return
            if time.monotonic() < due:  # another write came meanwhile: wait until writes are quiet
                _background.schedule(due - time.monotonic(), self._prefork)
                return
            self.prefork_due, self.prefork_scheduled = None, False
            if self.idle or self.forking:
                return
            self.forking += 1
        self._fork(store, prefork=True)

    # -- the store closes -----------------------------------------------------------------------------------
    def close(self) -> None:
        """End every process of this pool (idle ones here; busy ones are killed and reaped by their queries)."""
        with self._cond:
            self.closed = True
            idle, self.idle = self.idle, []
            busy = list(self.busy)
            self._cond.notify_all()
        for worker in busy:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for worker in idle:
            _end(worker)
        with self._cond:
            self._cond.wait_for(lambda: not (self.retiring or self.forking), timeout=30)
