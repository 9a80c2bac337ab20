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

**Reusable query process** (``_Pool``; stores with ``reuse_query_processes``, i.e. in memory). Forking a process
that holds a large graph in memory costs page-table copying in proportion to its size (at 100k publications it
made a first ``/sparql`` call 4x slower than the query itself). So a process forked from the store answers query
after query: the parent sends it each query over a pipe (pickled: text, media type, dataset, row cap, precheck,
time limit) and reads the same frame as above. Its rules:

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
pipe ends of the other queries in flight (``_pipe_fds``) and of the reusable processes (``_worker_fds``), and every
socket it inherited, so no child holds another query's pipe or a client's connection open. The frame carries its
own length, so the parent never waits for EOF anyway.

A child never outlives its server: it asks the kernel for SIGKILL when the thread that forked it ends
(``PR_SET_PDEATHSIG``; so also when the server is SIGKILLed or exits while a daemon thread waits), and a one-shot
child runs under a CPU limit of twice the time limit (``RLIMIT_CPU``) whatever happens to the parent.
Also in the child, before the query: ``netguard.deny_sockets()`` unless the query calls an allowlisted SERVICE, so
a query that slipped past the SERVICE check still cannot reach the network.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import heapq
import importlib
import itertools
import json
import logging
import math
import os
import pickle
import resource
import select
import signal
import stat
import struct
import sys
import threading
import time
import weakref
from contextlib import nullcontext
from typing import Callable

from mfmkg import netguard
from mfmkg.errors import MfmkgError, QueryTimeout, StoreError
from mfmkg.store.base import AskResult, GraphResult, RawResult, Store

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

_lock = threading.Lock()
_pipe_fds: set[int] = set()  # both ends of every one-shot pipe open in this process; guarded by _lock
_worker_fds: set[int] = set()  # the parent's ends of the reusable processes' pipes; guarded by _lock
_FRAME = struct.Struct(">IQ")  # header length, body length
_REQUEST = struct.Struct(">Q")  # request length
_PR_SET_PDEATHSIG = 1
_warmed = False
_libc = None  # loaded in the parent (warm_up): dlopen in a forked child could block on the loader's lock


class SandboxError(RuntimeError):
    """The query process failed with an error that is not one of ours (a bug, not the user's query)."""


def warm_up() -> None:
    """Import the result writers' plugins in the parent once, so each child does not import them again."""
    global _warmed, _libc
    if _warmed:
        return
    from mfmkg.results import RDF_FORMATS, RESULT_FORMATS, serialize

    for media_type in RDF_FORMATS:
        serialize(GraphResult([]), media_type)
    for media_type in RESULT_FORMATS:
        serialize(AskResult(True), media_type)
    netguard.prepare()
    if sys.platform == "linux":
        _libc = ctypes.CDLL(None, use_errno=True)
    _warmed = True


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
        request = _pack(sparql, media_type, kwargs, precheck, limit)
        if request is not None:
            result = _pool(store).run(store, request, limit)
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
    with guard, _lock:
        rfd, wfd = os.pipe()
        _pipe_fds.update((rfd, wfd))
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (rfd, wfd):
                _pipe_fds.discard(fd)
                os.close(fd)
            raise StoreError(f"cannot start a query process: {exc}") from exc
        if pid == 0:
            if hasattr(store, "after_fork_in_child"):
                store.after_fork_in_child()
            _child(job, wfd, parent, timeout)  # never returns
        _pipe_fds.discard(wfd)
        os.close(wfd)
    reaped = False
    try:
        frame = _read_frame(rfd, deadline, timeout)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # SIGCHLD ignored somewhere: the kernel reaped it, the status is lost
            status = 0
        reaped = True
        return _decode(frame, status)
    finally:
        with _lock:
            _pipe_fds.discard(rfd)
            os.close(rfd)
        if not reaped:
            _kill(pid)


def _kill(pid: int) -> int:
    """SIGKILL and reap; the wait status (0 if someone else reaped it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # already reaped (SIGCHLD ignored by someone)
        return 0


def _timed_out(timeout: float | None) -> QueryTimeout:
    return QueryTimeout(f"the query ran longer than {timeout:g} s and was stopped; "
                        "make it more selective or add a LIMIT")


def _poll_ms(deadline: float | None, timeout: float | None) -> int | None:
    """How long a poll may wait before the deadline, in ms (None: no deadline); past it, the time-limit error."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(timeout)
    return math.ceil(remaining * 1000)


def _read_frame(rfd: int, deadline: float | None, timeout: float | None) -> tuple[dict, bytes] | None:
    """The child's header and body; None if the pipe closed before a whole frame arrived."""
    poller = select.poll()  # not select(): a busy server's descriptors may exceed FD_SETSIZE
    poller.register(rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
    buf, need, hlen = bytearray(), _FRAME.size, None
    while len(buf) < need:
        if not poller.poll(_poll_ms(deadline, timeout)):
            continue
        chunk = os.read(rfd, 1 << 20)
        if not chunk:
            return None
        buf += chunk
        if hlen is None and len(buf) >= _FRAME.size:
            hlen, blen = _FRAME.unpack_from(buf)
            need = _FRAME.size + hlen + blen
    header = json.loads(bytes(buf[_FRAME.size:_FRAME.size + hlen]))
    return header, bytes(buf[_FRAME.size + hlen:])


def _decode(frame: tuple[dict, bytes] | None, status: int) -> RawResult:
    if frame is None:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            how = f"was killed by signal {sig}" + (" (out of memory?)" if sig == signal.SIGKILL else "")
        else:
            how = f"exited with status {os.waitstatus_to_exitcode(status)}"
        raise StoreError(f"the query process {how} before answering")
    header, body = frame
    if header["ok"]:
        return RawResult(body, header["media_type"], header["kind"], header["truncated"])
    if header.get("typed"):
        raise _typed_error(header)
    raise SandboxError(f"query process raised {header['class']}: {header['detail']}")


def _typed_error(header: dict) -> MfmkgError:
    """The same MfmkgError subclass the child raised, with its detail and plain attributes."""
    obj = importlib.import_module(header["module"])
    for part in header["class"].split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, MfmkgError)):
        return SandboxError(f"query process raised {header['class']}: {header['detail']}")
    exc = obj.__new__(obj)
    Exception.__init__(exc, header["detail"])
    exc.__dict__.update(header.get("attrs", {}))
    exc.detail = header["detail"]
    return exc


# -- inside a query process --------------------------------------------------------------------------------------

def _child(job: Callable[[], RawResult], wfd: int, parent: int, timeout: float | None) -> None:
    """A one-shot child's whole life: run the job, write one frame, _exit. Never returns, never raises."""
    code = 70
    try:
        _outlive_nobody(parent, timeout)
        _default_signals()
        _close_inherited({wfd}, everything=False)
        _answer(job, wfd)
        code = 0
    finally:
        os._exit(code)


def _answer(job: Callable[[], RawResult | None], wfd: int) -> None:
    """Run ``job`` and write its frame: the result, a typed or untyped error, or (job returned None) "needs the
    network"."""
    body = b""
    try:
        result = job()
        if result is None:
            header = {"ok": False, "needs_network": True}
        else:
            header = {"ok": True, "kind": result.kind, "media_type": result.media_type,
                      "truncated": bool(result.truncated)}
            body = result.body
    except MfmkgError as exc:
        header = {"ok": False, "typed": True, "module": type(exc).__module__,
                  "class": type(exc).__qualname__, "detail": exc.detail, "attrs": _plain(vars(exc))}
    except BaseException as exc:  # reported to the parent as a SandboxError (500), never as a 4xx
        header = {"ok": False, "typed": False, "class": type(exc).__name__, "detail": str(exc)}
    head = json.dumps(header).encode()
    _write_all(wfd, _FRAME.pack(len(head), len(body)) + head)
    _write_all(wfd, body)


def _outlive_nobody(parent: int, timeout: float | None) -> None:
    """Make sure the child ends even if the server dies without killing it (SIGKILL, crash, interpreter exit
    while the waiting thread is a daemon): the kernel kills it when the forking thread ends (Linux), and a CPU
    limit well above the time limit ends it in any case. No core dump of a copy of the server."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(71)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if timeout is not None:
            cpu = math.ceil(2 * timeout) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (ValueError, OSError):  # a lower hard limit is already in force
        pass


def _limit_cpu(timeout: float | None) -> None:
    """In a reusable process, before each query: the soft CPU limit at the time used so far plus twice the time
    limit (SIGXCPU, whose default action ends the process), or the hard limit when there is no time limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if timeout is None:
        soft = hard
    else:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + 2 * timeout) + 1
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ValueError, OSError):
        pass


def _default_signals() -> None:
    """Python signal handlers of the server (e.g. SIGHUP -> reload the ontology) must not run in a child: a signal
    to the whole process group (Ctrl-C, terminal hangup) then simply ends it."""
    for sig in signal.valid_signals():
        try:
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # uncatchable signals; or not the main thread (then SIGKILL still works)
            pass
    try:
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # the CPU limit must end the process, not be ignored
    except (OSError, ValueError, AttributeError):
        pass


def _close_inherited(keep: set[int], everything: bool) -> None:
    """Close what a query process must not hold: every socket (a client's connection would otherwise stay open
    after the server closed it) and the other sandbox pipes; with ``everything``, every descriptor above 2 except
    ``keep`` (a reusable process, which lives long and needs none: an in-memory store has no files)."""
    others = (_pipe_fds | _worker_fds) - keep
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: the sandbox pipes at least
        fds = sorted(others)
    for fd in fds:
        if fd <= 2 or fd in keep:
            continue
        if not everything and fd not in others:
            try:
                if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                    continue
            except OSError:
                continue
        try:
            os.close(fd)
        except OSError:
            pass


def _plain(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, bool, type(None)))}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _worker_main(store: Store, rx: int, tx: int, parent: int) -> None:
    """A reusable query process's whole life: answer requests from ``rx`` on ``tx`` until EOF. Never returns."""
    code = 70
    try:
        _outlive_nobody(parent, None)
        _default_signals()
        _close_inherited({rx, tx}, everything=True)
        gc.freeze()  # inherited objects stay out of collections: fewer pages copied on write
        netguard.deny_sockets()  # a query that needs the network is sent to a one-shot child instead
        while True:
            head = _read_exactly(rx, _REQUEST.size)
            data = head and _read_exactly(rx, _REQUEST.unpack(head)[0])
            if data is None:
                code = 0
                break
            sparql, media_type, kwargs, precheck, timeout = pickle.loads(data)  # noqa: S301 - from our parent
            _limit_cpu(timeout)

            def job(sparql=sparql, media_type=media_type, kwargs=kwargs, precheck=precheck):
                if precheck is not None and precheck(sparql):
                    return None
                return store.query_raw(sparql, media_type, **kwargs)

            _answer(job, tx)
    finally:
        os._exit(code)


# -- reusable query processes (in the server) ---------------------------------------------------------------------

def _pack(sparql: str, media_type: str, kwargs: dict, precheck, timeout: float | None) -> bytes | None:
    """The request for a reusable process; None when it cannot be pickled (a lambda as precheck)."""
    try:
        data = pickle.dumps((sparql, media_type, kwargs, precheck, timeout), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    return _REQUEST.pack(len(data)) + data


def _send(fd: int, data: bytes, deadline: float | None, timeout: float | None) -> bool:
    """Write the request within the deadline; False when the process is gone (broken pipe)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
    view = memoryview(data)
    while view:
        if not poller.poll(_poll_ms(deadline, timeout)):
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
    with _lock:
        for fd in (worker.tx, worker.rx):
            if fd in _worker_fds:
                _worker_fds.discard(fd)
                os.close(fd)


def _end(worker: _Worker) -> int:
    """Close the pipes, SIGKILL and reap; the wait status."""
    _close_worker_fds(worker)
    return _kill(worker.pid)


def _spawn(store: Store) -> _Worker:
    """Fork a reusable query process of ``store`` (called in the background thread)."""
    warm_up()
    parent = os.getpid()
    with store.fork_guard(), _lock:
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
            _worker_main(store, fds[0], fds[3], parent)  # never returns
        os.close(fds[0])
        os.close(fds[3])
        os.set_blocking(fds[1], False)
        _worker_fds.update((fds[1], fds[2]))
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


def _pool(store: Store) -> "_Pool":
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
        _pool(store).prefork_soon(0.0)


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
                frame = _read_frame(worker.rx, deadline, timeout) if sent else None
            except BaseException:  # the time limit, or this thread interrupted: the process must not run on
                self._discard(worker)
                raise
            if frame is None:
                status = self._discard(worker)
                if not sent and attempt == 1:  # it died while idle (OOM killer?): try a fresh one
                    continue
                return _decode(None, status)
            header = frame[0]
            if header.get("needs_network"):
                self._checkin(store, worker)
                return None
            if header["ok"] or header.get("typed"):
                self._checkin(store, worker)
            else:  # an error that is not ours: do not trust this process with another query
                self._discard(worker)
            return _decode(frame, 0)
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
                            raise _timed_out(timeout)
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
