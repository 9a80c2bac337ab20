"""The store interface every backend implements (embedded pyoxigraph now, a remote SPARQL endpoint later).

Results use rdflib terms so that no backend's own term types leak past this module's callers.
"""

from __future__ import annotations

import errno
import itertools
import os
import queue
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Union

from rdflib.term import BNode, Literal, Node, URIRef

Term = Union[URIRef, Literal, BNode]
Triple = tuple[Node, Node, Node]

#: Media types of SPARQL results and RDF serialisations every backend can produce.
RESULTS_MEDIA_TYPES = (
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
)
RDF_MEDIA_TYPES = ("text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml")

#: Staging graphs of graph writers (``Store.graph_writer``): ``<prefix><time_ns>-<random>``. Data in them is
#: not yet a source; a crash can leave one behind, which ``drop_staging_graphs`` removes.
STAGING_PREFIX = "https://w3id.org/mfmkg/graph/staging/load-"
#: Staging graphs of the remote store's batched writes (``mfmkg.store.remote``), also named by their time.
REMOTE_STAGING_PREFIX = "https://w3id.org/mfmkg/graph/staging/remote-"
#: Older staging prefixes of the loaders (graphs a crashed load of an earlier version may have left).
OLD_STAGING_PREFIXES = ("https://w3id.org/mfmkg/graph/staging/source/",)
#: On a store that several processes share, a staging graph is only taken for abandoned after this long.
STAGING_MAX_AGE = 6 * 3600
N_TRIPLES = "application/n-triples"

#: Data versions come from one process-wide counter, so two stores never share a version token.
_VERSIONS = itertools.count(1)
_VERSION_LOCK = threading.Lock()


@dataclass
class SelectResult:
    """Rows of a SELECT query; a row holds one term (or None when unbound) per variable."""

    variables: list[str]
    rows: list[tuple[Term | None, ...]]
    truncated: bool = False

    def dicts(self) -> list[dict[str, Term]]:
        """Rows as {variable: term}, unbound variables left out."""
        return [{v: t for v, t in zip(self.variables, row) if t is not None} for row in self.rows]

    def values(self) -> list[dict[str, object]]:
        """Rows as plain Python values (IRIs as str, literals converted), unbound as None: for JSON APIs."""
        return [{v: to_python(t) for v, t in zip(self.variables, row)} for row in self.rows]


@dataclass
class AskResult:
    value: bool


@dataclass
class GraphResult:
    triples: list[Triple] = field(default_factory=list)
    truncated: bool = False


QueryResult = Union[SelectResult, AskResult, GraphResult]


@dataclass
class RawResult:
    """A result already serialised by the backend in ``media_type``; ``kind`` is select, ask or graph."""

    body: bytes
    media_type: str
    kind: str
    truncated: bool = False


def to_python(term: Term | None) -> object:
    """A JSON-friendly value: IRIs and blank nodes as strings, literals as their Python value."""
    if term is None:
        return None
    if isinstance(term, Literal):
        value = term.toPython()
        return value if isinstance(value, (str, int, float, bool)) else str(term)
    return str(term)


class Store(ABC):
    """A quad store with SPARQL. Queries see the union of all graphs as their default graph."""

    #: True when queries may be evaluated in a forked child process (the data is in this process).
    forkable: bool = False
    #: True when other processes may write to the same store at the same time (a shared server): then a
    #: staging graph is only dropped as abandoned once it is older than STAGING_MAX_AGE.
    shared: bool = False
    #: True when ``load_path`` reads the file itself, without holding the GIL, and opens it only inside the store's
    #: guard against forks (so no forked process can inherit a FIFO's ends): then a graph writer streams through a
    #: FIFO, and the store parses and inserts while the caller's Python thread produces the next chunk. Otherwise
    #: it streams through a queue read by ``load``'s ``read`` calls, which need the GIL (correct, not concurrent).
    streams_paths: bool = False

    # -- data version --------------------------------------------------------------------------
    # Result caches (``mfmkg.cache``) key results by ``data_version()``. Every write method of a backend calls
    # ``self._bump()`` after its write (also when it failed: bumping is harmless, missing one is not), so a
    # result cached before a write is never served after it. The counter lives in this process: that is exact
    # for an embedded store, which only one process can open for writing (RocksDB's lock; an in-memory store
    # belongs to its process anyway). A backend whose data other processes may change (a shared remote
    # endpoint) must override ``data_version`` to reflect those writes, or return a fresh token on every call
    # to disable caching.

    def data_version(self) -> int:
        """A token that grows with every write through this store object; unique across stores in this process."""
        version = self.__dict__.get("_data_version")
        if version is None:
            with _VERSION_LOCK:
                version = self.__dict__.setdefault("_data_version", next(_VERSIONS))
        return version

    def _bump(self) -> int:
        """Record a write: the next ``data_version()`` is larger than every earlier one. Call after the write."""
        with _VERSION_LOCK:
            self._data_version = next(_VERSIONS)
            return self._data_version

    @abstractmethod
    def query(
        self,
        sparql: str,
        *,
        bindings: Mapping[str, Term] | None = None,
        default_graphs: list[str] | None = None,
        named_graphs: list[str] | None = None,
    ) -> QueryResult:
        """Run a SPARQL query. ``bindings`` are bound as RDF terms, never spliced into the text."""

    @abstractmethod
    def query_raw(
        self,
        sparql: str,
        media_type: str,
        *,
        bindings: Mapping[str, Term] | None = None,
        default_graphs: list[str] | None = None,
        named_graphs: list[str] | None = None,
        max_rows: int | None = None,
    ) -> RawResult:
        """Run a query and serialise its result in ``media_type`` (results or RDF types above).

        ``max_rows`` caps SELECT rows and CONSTRUCT triples; ``truncated`` says whether the cap was hit.
        """

    @abstractmethod
    def update(self, sparql: str) -> None:
        """Run a SPARQL update as one transaction."""

    @abstractmethod
    def load(self, data, media_type: str, graph: str) -> None:
        """Parse RDF ``data`` and add its triples to the named ``graph`` in one transaction.

        ``data`` is bytes, str, or a binary file object with ``read(n)``, read to its end (an exception raised by
        its ``read`` aborts the load, and nothing is written)."""

    @abstractmethod
    def add(self, triples: Iterable[Triple], graph: str) -> int:
        """Add rdflib triples to ``graph`` in one transaction; returns how many were given."""

    @abstractmethod
    def replace_graph(self, graph: str, triples: Iterable[Triple]) -> int:
        """Make ``graph`` hold exactly ``triples``; readers see the old or the new graph, never a mix."""

    @abstractmethod
    def drop_graph(self, graph: str) -> None:
        """Remove a named graph and all its triples (no error if it does not exist)."""

    @abstractmethod
    def graphs(self) -> list[str]:
        """IRIs of the named graphs that hold triples."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """Triple count per named graph, plus ``"default"`` for the default graph."""

    def load_path(self, path: str, media_type: str, graph: str) -> None:
        """``load`` of the RDF file at ``path`` (a FIFO too, read to its end), in one transaction. Backends that
        can should read the path without holding the GIL and set ``streams_paths``."""
        with open(path, "rb") as fh:
            self.load(fh, media_type, graph)

    # -- atomic graph writes ----------------------------------------------------------------------
    def graph_writer(self, graph: str) -> "GraphWriter":
        """A writer that makes ``graph`` hold exactly the N-Triples written to it, in one atomic step.

        Readers see the old graph until ``commit`` returns, and the new one after; an ``abort``, an exception or
        a crash (kill -9) before then leaves the old graph. The generic writer streams everything into one
        ``load`` transaction in a thread, fed through a FIFO (``streams_paths``) or a queue while the caller
        produces the data, so memory holds a few chunks besides what the backend's transaction holds: straight
        into ``graph`` when it is empty, else into a staging graph that one update then swaps in (``DROP`` +
        ``MOVE``). While it streams, the caller must not wait on the store (``GraphWriter.finish``). Backends may
        override it (the remote store sends batches to a staging graph)."""
        return StreamedGraphWriter(self, graph)

    def graph_is_empty(self, graph: str) -> bool:
        from rdflib import URIRef

        res = self.query("ASK { GRAPH ?g { ?s ?p ?o } }", bindings={"g": URIRef(graph)})
        return not (isinstance(res, AskResult) and res.value)

    def count(self, graph: str) -> int:
        """Triples in one named graph (one count query; ``stats`` counts every graph)."""
        from rdflib import URIRef

        res = self.query("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }", bindings={"g": URIRef(graph)})
        rows = res.rows if isinstance(res, SelectResult) else []
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def drop_staging_graphs(self, max_age: float | None = None) -> list[str]:
        """Drop staging graphs left behind by writers that died (kill -9, power loss) before their final step.

        On a store only this process writes to (the embedded store: RocksDB's lock admits one process) every
        staging graph that no writer of this process is using is abandoned; on a ``shared`` store only those
        older than ``max_age`` (default STAGING_MAX_AGE), since another process may be writing one right now.
        Returns the graphs dropped."""
        if max_age is None and self.shared:
            max_age = STAGING_MAX_AGE
        now = time.time_ns()
        with _WRITERS_LOCK:
            busy = set(_ACTIVE_STAGING)
        stale = []
        for g in self.graphs():
            if g in busy:
                continue
            if g.startswith(OLD_STAGING_PREFIXES):
                stale.append(g)
            elif g.startswith((STAGING_PREFIX, REMOTE_STAGING_PREFIX)):
                stamp = g.rsplit("/", 1)[1].split("-")[1]
                if max_age is None or (stamp.isdigit() and now - int(stamp) > max_age * 1e9):
                    stale.append(g)
        if stale:
            self.update(" ;\n".join(f"DROP SILENT GRAPH <{g}>" for g in stale))
        return stale

    def get_meta(self, key: str) -> str | None:
        """A bookkeeping value (e.g. the ontology content hash) kept in the meta graph."""
        from mfmkg.namespaces import META_GRAPH, MFM

        res = self.query(
            f"SELECT ?k ?v WHERE {{ GRAPH <{META_GRAPH}> {{ ?k <{MFM.metaValue}> ?v }} }}",
            bindings={"k": URIRef(META_GRAPH + "#" + key)},
        )
        rows = res.rows if isinstance(res, SelectResult) else []
        return str(rows[0][1]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        from mfmkg.namespaces import META_GRAPH, MFM

        k = URIRef(META_GRAPH + "#" + key)
        try:
            self.update(
                f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{k}> <{MFM.metaValue}> ?v }} }};\n"
                f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{k}> <{MFM.metaValue}> {Literal(value).n3()} }} }}"
            )
        finally:
            self._bump()  # ``update`` bumps too; this keeps set_meta a write for any backend

    def close(self) -> None:
        """Release the backend (file locks, connections)."""


# -- atomic graph writers ---------------------------------------------------------------------------------------

_WRITERS_LOCK = threading.Lock()
_ACTIVE_STAGING: set[str] = set()  # staging graphs of writers alive in this process: never swept


def new_staging_graph() -> str:
    """A fresh staging graph name; it starts with its creation time, so an abandoned one can be aged."""
    return f"{STAGING_PREFIX}{time.time_ns()}-{uuid.uuid4().hex[:12]}"


class GraphWriter(ABC):
    """Writes N-Triples into one graph as one atomic step (``Store.graph_writer``). Use as a context manager:
    leaving the block without ``commit`` (an exception, an early return) aborts."""

    def __init__(self, store: Store, graph: str):
        self.store, self.graph = store, graph
        self.done = False

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Add N-Triples (whole lines) to what the graph will hold."""

    def finish(self) -> None:
        """End the data: everything written is stored (a transaction of its own, not yet visible as ``graph``
        when the graph had content), without the final step. Store queries may run again after it (while a
        write is streaming, the caller must not wait on the store)."""

    @abstractmethod
    def commit(self) -> None:
        """Make the graph hold what was written (calls ``finish`` first if needed)."""

    @abstractmethod
    def abort(self) -> None:
        """Forget what was written; the graph keeps its old content. Never raises."""

    def __enter__(self) -> "GraphWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.done:
            self.abort()

    def _claim(self, staging: str | None) -> None:
        if staging:
            with _WRITERS_LOCK:
                _ACTIVE_STAGING.add(staging)

    def _release(self, staging: str | None) -> None:
        if staging:
            with _WRITERS_LOCK:
                _ACTIVE_STAGING.discard(staging)


def _name_thread(name: bytes) -> None:
    """Give the calling thread an OS-level name (Linux ``prctl(PR_SET_NAME)``; Python 3.11 does not), so that
    ``top -H``, ``/proc/PID/task/*/comm`` and the fault tests can see that a write is under way."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


class _Aborted(Exception):
    """Raised into a streamed load to roll its transaction back."""


_END, _ABORT = object(), object()


class _QueueReader:
    """What a streamed load reads: ``read(n)`` hands out the written chunks, blocking (GIL released) while the
    queue is empty; at an abort it raises, so that the load's transaction is rolled back instead of committed.
    (A queue, not an OS pipe: a process forked meanwhile, e.g. a query process of ``mfmkg.sandbox``, would keep
    a copy of the pipe's write end open, and the load would never see the end of its data.)"""

    def __init__(self, depth: int):
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self._buf = memoryview(b"")
        self._pos = 0
        self._end = False

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            if self._end:
                return b""
            item = self.queue.get()
            if item is _END:
                self._end = True
                return b""
            if item is _ABORT:
                self._end = True
                raise _Aborted("the write was aborted")
            self._buf, self._pos = memoryview(item), 0
        end = len(self._buf) if n is None or n < 0 else self._pos + n
        out = self._buf[self._pos:end].tobytes()
        self._pos += len(out)
        return out

    def readable(self) -> bool:
        return True


class _QueueFeed:
    """Chunks for a load in another thread, handed over by a bounded queue (``_QueueReader``)."""

    def __init__(self, depth: int):
        self.reader = _QueueReader(depth)

    def load(self, store: Store, graph: str) -> None:  # in the loading thread
        store.load(self.reader, N_TRIPLES, graph)

    def opened(self, thread: threading.Thread) -> None:
        pass

    def put(self, data, thread: threading.Thread) -> bool:
        """Queue ``data``; False when the loading thread has stopped reading."""
        while thread.is_alive():
            try:
                self.reader.queue.put(data, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def end(self, thread: threading.Thread, abort: bool = False) -> None:
        self.put(_ABORT if abort else _END, thread)


class _FifoFeed:
    """Chunks for a load in another thread through a FIFO that the store reads itself (``Store.load_path``,
    ``streams_paths``): no GIL is needed to read, so the store parses while the caller's thread works. A pump
    thread writes the queued chunks into the FIFO (its blocking writes release the GIL), so the caller only waits
    when ``depth`` chunks are queued. An abort ends the data with a line that is not N-Triples: the load fails,
    and its transaction is rolled back."""

    ABORT_LINE = b"\n\x00 mfmkg: the write was aborted\n"

    def __init__(self, depth: int):
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="mfmkg-write-")
        self.path = os.path.join(self.dir, "graph.nt")
        os.mkfifo(self.path, 0o600)
        self.fd = -1
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.broken = False
        self.pump: threading.Thread | None = None

    def load(self, store: Store, graph: str) -> None:  # in the loading thread
        store.load_path(self.path, N_TRIPLES, graph)

    def opened(self, thread: threading.Thread) -> None:
        """Open the write end once the store has opened the read end (a FIFO opened for writing without a reader
        would block for ever if the load failed first), and start the pump."""
        while self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO or not thread.is_alive():
                    self.broken = True
                    return
                time.sleep(0.0005)
        os.set_blocking(self.fd, True)
        try:
            import fcntl

            fcntl.fcntl(self.fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)  # fewer, larger hand-overs
        except (ImportError, OSError):
            pass
        self.pump = threading.Thread(target=self._pump, name="mfmkg-write-pump", daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        fd = self.fd
        try:
            while True:
                data = self.queue.get()
                if data is _END:
                    return
                if not self.broken:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
        except OSError:  # BrokenPipeError: the load stopped reading (its error is raised by the writer)
            self.broken = True
            while self.queue.get() is not _END:  # let the caller's puts and end() through
                pass
        finally:
            os.close(fd)

    def put(self, data, thread: threading.Thread) -> bool:
        while not self.broken and self.pump is not None:
            try:
                self.queue.put(data, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def end(self, thread: threading.Thread, abort: bool = False) -> None:
        if self.pump is None:
            return
        if abort:
            self.put(self.ABORT_LINE, thread)
        while self.pump.is_alive():
            try:
                self.queue.put(_END, timeout=0.2)
                break
            except queue.Full:
                continue
        self.pump.join()  # the FIFO is closed: the load sees the end of its data

    def cleanup(self) -> None:
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


class StreamedGraphWriter(GraphWriter):
    """The generic writer: one ``store.load`` transaction in a thread, fed with the written chunks through a FIFO
    (``streams_paths``) or a queue (see ``Store.graph_writer``). At most ``depth`` chunks wait in memory."""

    def __init__(self, store: Store, graph: str, depth: int = 4):
        super().__init__(store, graph)
        self.staging = None if store.graph_is_empty(graph) else new_staging_graph()
        self.target = self.staging or graph
        self._claim(self.staging)
        self._depth = depth
        self._feed = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._finished = False

    def _run(self) -> None:
        _name_thread(b"mfmkg-write")
        try:
            self._feed.load(self.store, self.target)
        except BaseException as exc:  # re-raised in the writing thread
            self._error = exc

    def _stopped(self) -> BaseException:
        self._thread.join()
        self._cleanup()
        return self._error or RuntimeError("the graph writer stopped reading")

    def _cleanup(self) -> None:
        if isinstance(self._feed, _FifoFeed):
            self._feed.cleanup()

    def write(self, data: bytes) -> None:
        if self.done or self._finished:
            raise RuntimeError("write after the end of a graph write")
        if not data:
            return
        if self._thread is None:
            self._feed = _FifoFeed(self._depth) if self.store.streams_paths and hasattr(os, "mkfifo") else \
                _QueueFeed(self._depth)
            self._thread = threading.Thread(target=self._run, name="mfmkg-graph-writer", daemon=True)
            self._thread.start()
            self._feed.opened(self._thread)
        if not self._feed.put(bytes(data), self._thread):
            raise self._stopped()

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._thread is None:
            return
        self._feed.end(self._thread)
        self._thread.join()
        self._cleanup()
        if self._error is not None:
            self.done = True
            self._release(self.staging)
            raise self._error

    def commit(self) -> None:
        try:
            self.finish()
            if self.staging is not None:
                # one update, so one transaction: readers see the old graph or the new one (no other process
                # writes to this store, and drop_staging_graphs spares the staging graphs of live writers)
                self.store.update(f"DROP SILENT GRAPH <{self.graph}> ;\n"
                                  f"MOVE SILENT GRAPH <{self.staging}> TO GRAPH <{self.graph}>")
        except BaseException:
            self.abort()
            raise
        self.done = True
        self._release(self.staging)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            if self._thread is not None and not self._finished:
                self._finished = True
                self._feed.end(self._thread, abort=True)  # the load fails at it and rolls back
                self._thread.join()
                self._cleanup()
            elif self.staging is not None and self._thread is not None:
                self.store.drop_graph(self.staging)  # its transaction was committed: drop it
        except Exception:  # best effort: a leftover staging graph is dropped by drop_staging_graphs
            pass
        finally:
            self._release(self.staging)
