"""Inside a query process, and the frame it answers with (the parent side: ``sandbox.py``, ``query_pool.py``).

A frame is the header length and the body length (``FRAME``), a JSON header (the result kind, media type and
truncation flag; or a typed error as module, class, detail and plain attributes; or "needs the network"),
then the body. A request to a reusable process is its length (``REQUEST``) and a pickle of the query text,
media type, dataset, row cap, precheck and time limit.

A query process leaves with ``os._exit``, so no atexit handler, finaliser or store destructor runs in it: a
copy of an on-disk store must never be flushed or closed. It touches only the store, the result writers (their
plugins imported in the parent first, ``warm_up``) and its pipes: no logging, no threads of ours (see
``sandbox.py`` on forking a threaded server).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
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
from typing import Callable

from mfmkg import netguard
from mfmkg.errors import MfmkgError, QueryTimeout, StoreError
from mfmkg.store.base import AskResult, GraphResult, RawResult, Store

FRAME = struct.Struct(">IQ")  # header length, body length
REQUEST = struct.Struct(">Q")  # request length
#: Guards the two sets below, and is held while a one-shot child or a reusable process is forked.
fds_lock = threading.Lock()
pipe_fds: set[int] = set()  # both ends of every one-shot pipe open in this process
worker_fds: set[int] = set()  # the parent's ends of the reusable processes' pipes
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


def kill(pid: int) -> int:
    """SIGKILL and reap; the wait status (0 if someone else reaped it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # already reaped (SIGCHLD ignored by someone)
        return 0


def timed_out(timeout: float | None) -> QueryTimeout:
    return QueryTimeout(f"the query ran longer than {timeout:g} s and was stopped; "
                        "make it more selective or add a LIMIT")


def poll_ms(deadline: float | None, timeout: float | None) -> int | None:
    """How long a poll may wait before the deadline, in ms (None: no deadline); past it, the time-limit error."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise timed_out(timeout)
    return math.ceil(remaining * 1000)


def read_frame(rfd: int, deadline: float | None, timeout: float | None) -> tuple[dict, bytes] | None:
    """The child's header and body; None if the pipe closed before a whole frame arrived."""
    poller = select.poll()  # not select(): a busy server's descriptors may exceed FD_SETSIZE
    poller.register(rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
    buf, need, hlen = bytearray(), FRAME.size, None
    while len(buf) < need:
        if not poller.poll(poll_ms(deadline, timeout)):
            continue
        chunk = os.read(rfd, 1 << 20)
        if not chunk:
            return None
        buf += chunk
        if hlen is None and len(buf) >= FRAME.size:
            hlen, blen = FRAME.unpack_from(buf)
            need = FRAME.size + hlen + blen
    header = json.loads(bytes(buf[FRAME.size:FRAME.size + hlen]))
    return header, bytes(buf[FRAME.size + hlen:])


def decode(frame: tuple[dict, bytes] | None, status: int) -> RawResult:
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


def one_shot_main(job: Callable[[], RawResult], wfd: int, parent: int, timeout: float | None) -> None:
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
    write_all(wfd, FRAME.pack(len(head), len(body)) + head)
    write_all(wfd, body)


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
    others = (pipe_fds | worker_fds) - keep
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


def write_all(fd: int, data: bytes) -> None:
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


def reusable_main(store: Store, rx: int, tx: int, parent: int) -> None:
    """A reusable query process's whole life: answer requests from ``rx`` on ``tx`` until EOF. Never returns."""
    code = 70
    try:
        _outlive_nobody(parent, None)
        _default_signals()
        _close_inherited({rx, tx}, everything=True)
        gc.freeze()  # inherited objects stay out of collections: fewer pages copied on write
        netguard.deny_sockets()  # a query that needs the network is sent to a one-shot child instead
        while True:
            head = _read_exactly(rx, REQUEST.size)
            data = head and _read_exactly(rx, REQUEST.unpack(head)[0])
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
