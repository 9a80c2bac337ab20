"""Run a query in a forked child process with a hard time limit: pyoxigraph has no timeout or cancellation.

Design. The parent creates a pipe and forks. The child runs the job (``store.query_raw``), writes one frame to the
pipe (header length and body length, a JSON header with the result kind, media type and truncation flag, or a
typed error as module, class and detail; then the body) and leaves with ``os._exit``, so no atexit handler,
finaliser or store destructor runs in the child: a copy of an on-disk store must never be flushed or closed. The
parent polls the pipe until the deadline; on timeout it SIGKILLs the child. It always reaps the child with
``waitpid``, also when its own thread is interrupted by an exception, so no zombie is left. Typed errors
(``MfmkgError`` subclasses) raised in the child are raised again in the parent as the same class; any other
exception becomes ``SandboxError`` (a 500, never a 4xx). A child that dies without answering (OOM killer, crash)
becomes ``StoreError`` (503). Fork is copy-on-write: about 5 ms, and the child sees the store as it was at that
instant without copying it; in-memory and on-disk pyoxigraph stores both work (the child only reads).

Caveat: fork in a threaded server (waitress). Only the forking thread exists in the child, and a lock another thread
held at that instant stays held there. So the child touches only the store, the result writers (their plugins are
imported in the parent first, see ``warm_up``) and the pipe: no logging, no inherited sockets, no threads of ours.
Should a writer have held a pyoxigraph lock at the fork, the child would block, and the time limit still ends it.
(Python 3.12+ warns about fork in a threaded process for exactly this reason.)

Concurrency: forks from several request threads can overlap. Creating the pipe and forking happen under one lock,
and each child closes the pipe ends of the other queries in flight (``_pipe_fds``), so no child holds another
query's pipe open. The frame carries its own length, so the parent never waits for EOF anyway. Children do inherit
the server's sockets, but hold them only for their own short life.

A child never outlives its server: it asks the kernel for SIGKILL when the thread that forked it ends
(``PR_SET_PDEATHSIG``; so also when the server is SIGKILLed or exits while a daemon thread waits), and it runs under
a CPU limit of twice the time limit (``RLIMIT_CPU``) whatever happens to the parent.

Also in the child, before the query: ``netguard.deny_sockets()`` unless the query calls an allowlisted SERVICE, so a
query that slipped past the SERVICE check still cannot reach the network.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import math
import os
import resource
import select
import signal
import struct
import sys
import threading
import time
from typing import Callable

from mfmkg import netguard
from mfmkg.errors import MfmkgError, QueryTimeout, StoreError
from mfmkg.store.base import AskResult, GraphResult, RawResult, Store

_lock = threading.Lock()
_pipe_fds: set[int] = set()  # both ends of every sandbox pipe open in this process; guarded by _lock
_FRAME = struct.Struct(">IQ")  # header length, body length
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


def query_raw(store: Store, sparql: str, media_type: str, *, timeout: float | None,
              precheck: Callable[[str], bool] | None = None, **kwargs) -> RawResult:
    """``store.query_raw`` with a hard time limit when the store is forkable (otherwise run directly).

    ``precheck(sparql)`` runs first, in the child when there is one so that its cost counts against the limit; it
    may raise a typed error, and returns True when the query needs the network (an allowlisted SERVICE).
    """

    def job(isolated: bool) -> RawResult:
        needs_network = precheck(sparql) if precheck else False
        if isolated and not needs_network:
            netguard.deny_sockets()
        return store.query_raw(sparql, media_type, **kwargs)

    if store.forkable and timeout and timeout > 0:
        return call(lambda: job(True), timeout)
    return job(False)


def call(job: Callable[[], RawResult], timeout: float) -> RawResult:
    """Run ``job`` in a forked child and return its result; QueryTimeout after ``timeout`` seconds."""
    warm_up()
    deadline = time.monotonic() + timeout
    parent = os.getpid()
    with _lock:
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


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped (SIGCHLD ignored by someone)
        pass


def _read_frame(rfd: int, deadline: float, timeout: float) -> tuple[dict, bytes] | None:
    """The child's header and body; None if the pipe closed before a whole frame arrived."""
    poller = select.poll()  # not select(): a busy server's descriptors may exceed FD_SETSIZE
    poller.register(rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
    buf, need, hlen = bytearray(), _FRAME.size, None
    while len(buf) < need:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise QueryTimeout(f"the query ran longer than {timeout:g} s and was stopped; "
                               "make it more selective or add a LIMIT")
        if not poller.poll(math.ceil(remaining * 1000)):
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


def _child(job: Callable[[], RawResult], wfd: int, parent: int, timeout: float) -> None:
    """The child's whole life: run the job, write one frame, _exit. Never returns, never raises."""
    code = 70
    try:
        _outlive_nobody(parent, timeout)
        _default_signals()
        for fd in _pipe_fds - {wfd}:
            try:
                os.close(fd)
            except OSError:
                pass
        body = b""
        try:
            result = job()
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
        code = 0
    finally:
        os._exit(code)


def _outlive_nobody(parent: int, timeout: float) -> None:
    """Make sure the child ends even if the server dies without killing it (SIGKILL, crash, interpreter exit
    while the waiting thread is a daemon): the kernel kills it when the forking thread ends (Linux), and a CPU
    limit well above the time limit ends it in any case. No core dump of a copy of the server."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(71)
    cpu = math.ceil(2 * timeout) + 1
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (ValueError, OSError):  # a lower hard limit is already in force
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


def _plain(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, bool, type(None)))}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
