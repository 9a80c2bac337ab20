"""The default store: pyoxigraph, persistent in a data directory or in memory.

Every operation holds the store's readers-writer lock shared; ``mfmkg.sandbox`` holds it exclusive only around
``os.fork()`` (``fork_guard``). pyoxigraph takes internal mutexes inside an operation (the in-memory storage while
a query reads it), and a mutex that another thread holds at the instant of a fork stays locked for ever in the
child, whose only thread would then wait on it until the time limit killed it. With the lock, no operation of this
store is in flight at a fork, so the child finds every mutex of the store free.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyoxigraph as ox

from mfmkg.binding import bind_values
from mfmkg.errors import QuerySyntaxError, StoreError
from mfmkg.results import serialize
from mfmkg.store.base import AskResult, GraphResult, QueryResult, RawResult, SelectResult, Store, Triple
from mfmkg.store.terms import to_oxigraph, to_rdflib

_STAGING = "https://w3id.org/mfmkg/graph/staging/"


class ReadWriteLock:
    """Many shared holders or one exclusive holder.

    Shared is reentrant per thread (``replace_graph`` calls ``update``), and a thread waiting for exclusive bars
    new shared holders, so a fork waits at most for the operations already in flight and is never starved by a
    stream of reads. A thread that holds the lock shared must not ask for it exclusive (that would wait for
    itself): it gets a RuntimeError instead.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._writer or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if getattr(self._local, "depth", 0):
            raise RuntimeError("this thread holds the store lock shared and cannot take it exclusive")
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()

    def reset_in_child(self) -> None:
        """In a forked child: a fresh, free lock (the forking thread held it exclusive, and another thread may
        have held its internal mutex at the fork)."""
        self._reset()


class EmbeddedStore(Store):
    """A pyoxigraph store. ``path=None`` keeps everything in memory."""

    forkable = True

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._rw = ReadWriteLock()
        self._write_hooks: list[Callable[[int], None]] = []
        self._close_hooks: list[Callable[[], None]] = []
        try:
            if self.path:
                self.path.mkdir(parents=True, exist_ok=True)
                self._store = ox.Store(str(self.path))
            else:
                self._store = ox.Store()
        except OSError as exc:
            raise StoreError(_open_error(self.path, exc)) from exc

    @property
    def reuse_query_processes(self) -> bool:
        """True in memory: a query process forked from this store may answer several queries of one data
        version (``mfmkg.sandbox``). Forking a process that holds the whole graph costs page-table copying in
        proportion to its size, while its copy of the data stays exact. On disk, fork is cheap and a long-lived
        copy of RocksDB's state could read files that the server's compactions have since removed."""
        return self.path is None

    # -- fork support (mfmkg.sandbox) -------------------------------------------------------------------
    @contextmanager
    def fork_guard(self) -> Iterator[None]:
        """Hold while forking: waits for the operations in flight and admits no new ones until the block ends."""
        with self._rw.exclusive():
            yield

    def after_fork_in_child(self) -> None:
        """Call first thing in a child forked under ``fork_guard``: the child may use the store again."""
        self._rw.reset_in_child()
        self._write_hooks, self._close_hooks = [], []

    def on_write(self, hook: Callable[[int], None]) -> None:
        """Call ``hook(new_data_version)`` after every write (inside the write's lock: it must not block)."""
        self._write_hooks.append(hook)

    def on_close(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when the store is closed, before the store itself is."""
        self._close_hooks.append(hook)

    def _bump(self) -> int:
        version = super()._bump()
        for hook in list(self._write_hooks):
            hook(version)
        return version

    # -- queries ---------------------------------------------------------------------------------
    def _run(self, sparql, bindings, default_graphs, named_graphs):
        kwargs = {}
        if default_graphs:
            kwargs["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
        else:
            kwargs["use_default_graph_as_union"] = True
        if named_graphs:
            kwargs["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
        try:
            return self._store.query(bind_values(sparql, bindings), **kwargs)
        except SyntaxError as exc:
            raise QuerySyntaxError(str(exc)) from exc
        except OSError as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    def query(self, sparql, *, bindings=None, default_graphs=None, named_graphs=None) -> QueryResult:
        with self._rw.shared():  # pyoxigraph's results are lazy: iterated (in _convert) under the lock too
            return self._convert(self._run(sparql, bindings, default_graphs, named_graphs), None)

    def query_raw(self, sparql, media_type, *, bindings=None, default_graphs=None, named_graphs=None,
                  max_rows=None) -> RawResult:
        with self._rw.shared():
            result = self._convert(self._run(sparql, bindings, default_graphs, named_graphs), max_rows)
        return serialize(result, media_type)

    @staticmethod
    def _convert(res, max_rows: int | None) -> QueryResult:
        try:
            if isinstance(res, ox.QueryBoolean):
                return AskResult(bool(res))
            if isinstance(res, ox.QuerySolutions):
                variables = [v.value for v in res.variables]
                rows, truncated = [], False
                for i, sol in enumerate(res):
                    if max_rows is not None and i >= max_rows:
                        truncated = True
                        break
                    rows.append(tuple(to_rdflib(sol[v]) for v in variables))
                return SelectResult(variables, rows, truncated)
            triples, truncated = [], False
            for i, t in enumerate(res):
                if max_rows is not None and i >= max_rows:
                    truncated = True
                    break
                triples.append((to_rdflib(t.subject), to_rdflib(t.predicate), to_rdflib(t.object)))
            return GraphResult(triples, truncated)
        except OSError as exc:
            raise StoreError(f"store read failed: {exc}") from exc
        except SyntaxError as exc:  # raised lazily by some evaluation errors
            raise QuerySyntaxError(str(exc)) from exc

    # -- writes ----------------------------------------------------------------------------------
    # Each write bumps the data version inside the shared lock, so a fork (exclusive) sees data and version agree.
    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write: under the shared lock, pyoxigraph's errors mapped to ours, the data version bumped even when
        it fails (a failed write may have changed nothing, but a stale cache must never outlive a change)."""
        with self._rw.shared():
            try:
                yield
            except SyntaxError as exc:
                raise QuerySyntaxError(str(exc)) from exc
            except OSError as exc:
                raise StoreError(f"store write failed: {exc}") from exc
            finally:
                self._bump()

    @staticmethod
    def _format(media_type: str) -> "ox.RdfFormat":
        fmt = ox.RdfFormat.from_media_type(media_type)
        if fmt is None:
            raise ValueError(f"unsupported RDF media type {media_type!r}")
        return fmt

    def update(self, sparql: str) -> None:
        with self._writing():
            self._store.update(sparql)

    def load(self, data: bytes | str, media_type: str, graph: str) -> None:
        fmt = self._format(media_type)
        with self._writing():
            self._store.load(data.encode() if isinstance(data, str) else data, format=fmt,
                             to_graph=ox.NamedNode(graph))

    #: load_path hands the path to Rust, which reads and parses it without the GIL (see Store.streams_paths)
    streams_paths = True

    def load_path(self, path: str, media_type: str, graph: str) -> None:
        fmt = self._format(media_type)
        with self._writing():
            self._store.load(path=str(path), format=fmt, to_graph=ox.NamedNode(graph))

    def add(self, triples: Iterable[Triple], graph: str) -> int:
        g = ox.NamedNode(graph)
        quads = [ox.Quad(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o), g) for s, p, o in triples]
        with self._writing():
            self._store.extend(quads)  # one transaction
        return len(quads)

    def replace_graph(self, graph: str, triples: Iterable[Triple]) -> int:
        staging = _STAGING + str(abs(hash(graph)))
        self.drop_graph(staging)
        n = self.add(triples, staging)
        # MOVE is one update, so one transaction: readers see the old or the new graph.
        self.update(f"DROP SILENT GRAPH <{graph}> ; MOVE SILENT GRAPH <{staging}> TO GRAPH <{graph}>")
        return n

    def drop_graph(self, graph: str) -> None:
        self.update(f"DROP SILENT GRAPH <{graph}>")

    # -- inspection ------------------------------------------------------------------------------
    def graphs(self) -> list[str]:
        with self._rw.shared():
            return sorted(g.value for g in self._store.named_graphs() if isinstance(g, ox.NamedNode))

    def stats(self) -> dict[str, int]:
        counts = {"default": 0}
        with self._rw.shared():
            res = self._store.query("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
            for sol in res:
                counts[sol["g"].value] = int(sol["n"].value)
            res = self._store.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
            counts["default"] = int(next(iter(res))["n"].value)
        return counts

    def flush(self) -> None:
        if self.path:
            with self._rw.shared():
                self._store.flush()

    def close(self) -> None:
        hooks, self._close_hooks = self._close_hooks, []
        for hook in hooks:  # e.g. the sandbox ends this store's query processes
            hook()
        with self._rw.shared():
            if self.path:
                try:
                    self._store.flush()
                except OSError:
                    pass
            self._store = None


def _open_error(path: Path | None, exc: OSError) -> str:
    text = str(exc)
    if "lock" in text.lower():
        return f"data directory {path} is in use by another mfmkg process ({text})"
    if "read-only" in text.lower() or "permission" in text.lower():
        return f"data directory {path} is not writable ({text})"
    return f"cannot open store at {path}: {text}"
