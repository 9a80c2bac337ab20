"""The store interface every backend implements (embedded pyoxigraph now, a remote SPARQL endpoint later).

Results use rdflib terms so that no backend's own term types leak past this module's callers.
"""

from __future__ import annotations

import itertools
import threading
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
    def load(self, data: bytes | str, media_type: str, graph: str) -> None:
        """Parse RDF ``data`` and add its triples to the named ``graph`` in one transaction."""

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
