"""The default store: pyoxigraph, persistent in a data directory or in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pyoxigraph as ox

from mfmkg.binding import bind_values
from mfmkg.errors import QuerySyntaxError, StoreError
from mfmkg.results import serialize
from mfmkg.store.base import AskResult, GraphResult, QueryResult, RawResult, SelectResult, Store, Term, Triple
from mfmkg.store.terms import to_oxigraph, to_rdflib

_STAGING = "https://w3id.org/mfmkg/graph/staging/"


class EmbeddedStore(Store):
    """A pyoxigraph store. ``path=None`` keeps everything in memory."""

    forkable = True

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        try:
            if self.path:
                self.path.mkdir(parents=True, exist_ok=True)
                self._store = ox.Store(str(self.path))
            else:
                self._store = ox.Store()
        except OSError as exc:
            raise StoreError(_open_error(self.path, exc)) from exc

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
        return self._convert(self._run(sparql, bindings, default_graphs, named_graphs), None)

    def query_raw(self, sparql, media_type, *, bindings=None, default_graphs=None, named_graphs=None,
                  max_rows=None) -> RawResult:
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
    def update(self, sparql: str) -> None:
        try:
            self._store.update(sparql)
        except SyntaxError as exc:
            raise QuerySyntaxError(str(exc)) from exc
        except OSError as exc:
            raise StoreError(f"store write failed: {exc}") from exc
        finally:
            self._bump()

    def load(self, data: bytes | str, media_type: str, graph: str) -> None:
        fmt = ox.RdfFormat.from_media_type(media_type)
        if fmt is None:
            raise ValueError(f"unsupported RDF media type {media_type!r}")
        try:
            self._store.load(data.encode() if isinstance(data, str) else data, format=fmt,
                             to_graph=ox.NamedNode(graph))
        except SyntaxError as exc:
            raise QuerySyntaxError(str(exc)) from exc
        except OSError as exc:
            raise StoreError(f"store write failed: {exc}") from exc
        finally:
            self._bump()

    def add(self, triples: Iterable[Triple], graph: str) -> int:
        g = ox.NamedNode(graph)
        quads = [ox.Quad(to_oxigraph(s), to_oxigraph(p), to_oxigraph(o), g) for s, p, o in triples]
        try:
            self._store.extend(quads)  # one transaction
        except OSError as exc:
            raise StoreError(f"store write failed: {exc}") from exc
        finally:
            self._bump()
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
        return sorted(g.value for g in self._store.named_graphs() if isinstance(g, ox.NamedNode))

    def stats(self) -> dict[str, int]:
        counts = {"default": 0}
        res = self._store.query("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        for sol in res:
            counts[sol["g"].value] = int(sol["n"].value)
        res = self._store.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
        counts["default"] = int(next(iter(res))["n"].value)
        return counts

    def flush(self) -> None:
        if self.path:
            self._store.flush()

    def close(self) -> None:
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
