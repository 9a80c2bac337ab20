"""A versioned release dump: the whole knowledge graph as Turtle and JSON-LD, named with the ontology version,
with SHA-256 digests.

What is dumped: the ontology graph, every source graph (``.../graph/source/<name>``: literature, ATLAS) and the
inferred graph, merged into one RDF graph (Turtle has no named graphs). The SHACL shapes and the bookkeeping
``meta`` graph are not data and are left out.

Both serialisations are written by this module, byte-stable: subjects, predicates and objects in sorted order,
blank nodes canonically relabelled, literals in their exact lexical form, our standard prefixes. So the same
graph always has the same digests, and ``release_info`` can report them in ``/-/version.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph
from rdflib.compare import to_canonical_graph
from rdflib.namespace import RDF
from rdflib.term import BNode, Literal, URIRef

from mfmkg.exports.common import ontology_version
from mfmkg.namespaces import INFERRED_GRAPH, ONTOLOGY_GRAPH, PREFIXES, SOURCE_GRAPH_PREFIX
from mfmkg.store.base import SelectResult, Store

#: Prefixes used in the dump besides the standard ones.
EXTRA_PREFIXES = {
    "atlas": "https://w3id.org/mfmkg/id/atlas/",
    "attack": "https://w3id.org/mfmkg/id/attack/",
    "coverage": "https://w3id.org/mfmkg/id/coverage/",
    "pub": "https://w3id.org/mfmkg/id/pub/",
}
MEDIA_TYPES = {"ttl": "text/turtle", "jsonld": "application/ld+json"}
_SAFE_LOCAL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")
_CACHE: dict = {}
_LOCK = threading.Lock()
CACHE_SECONDS = 60.0


def release_graphs(store: Store) -> list[str]:
    """The named graphs a release contains, in order."""
    return sorted(g for g in store.graphs()
                  if g == ONTOLOGY_GRAPH or g == INFERRED_GRAPH or g.startswith(SOURCE_GRAPH_PREFIX))


def release_graph(store: Store) -> Graph:
    """The merged rdflib graph of :func:`release_graphs`, blank nodes canonically relabelled."""
    names = release_graphs(store)
    g = Graph()
    if names:
        values = " ".join(f"<{n}>" for n in names)
        res = store.query(f"SELECT DISTINCT ?s ?p ?o WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }}")
        assert isinstance(res, SelectResult)
        for s, p, o in res.rows:
            g.add((s, p, o))
    if any(isinstance(t, BNode) for triple in g for t in triple):
        g = to_canonical_graph(g)
    return g


def _prefixes() -> list[tuple[str, str]]:
    merged = {**PREFIXES, **EXTRA_PREFIXES}
    return sorted(merged.items())


def _by_length(prefixes):
    return sorted(prefixes, key=lambda kv: -len(kv[1]))


def _sort_key(term) -> tuple:
    if isinstance(term, URIRef):
        return (0, str(term), "", "")
    if isinstance(term, BNode):
        return (1, str(term), "", "")
    return (2, str(term), str(term.datatype or ""), term.language or "")


def _subjects(g: Graph) -> list:
    return sorted(set(g.subjects()), key=_sort_key)


def _predicates(g: Graph, s) -> list:
    preds = sorted(set(g.predicates(s)), key=_sort_key)
    return ([RDF.type] if RDF.type in preds else []) + [p for p in preds if p != RDF.type]


def to_turtle(g: Graph) -> bytes:
    """Deterministic Turtle: one subject block per subject, sorted, ``PREFIX`` lines for our namespaces."""
    prefixes = _prefixes()
    longest = _by_length(prefixes)

    def term(t) -> str:
        if isinstance(t, URIRef):
            iri = str(t)
            for prefix, ns in longest:
                if iri.startswith(ns) and _SAFE_LOCAL.match(iri[len(ns):]):
                    return f"{prefix}:{iri[len(ns):]}"
            return f"<{iri}>"
        if isinstance(t, BNode):
            return f"_:{_bnode_label(t)}"
        return _literal(t, term)

    out = [f"PREFIX {p}: <{ns}>" for p, ns in prefixes]
    for s in _subjects(g):
        out.append("")
        out.append(term(s))
        preds = _predicates(g, s)
        for i, p in enumerate(preds):
            objs = sorted(g.objects(s, p), key=_sort_key)
            ptext = "a" if p == RDF.type else term(p)
            if len(objs) == 1:
                out.append(f"    {ptext} {term(objs[0])} ;")
            else:
                out.append(f"    {ptext}")
                out.extend(f"        {term(o)} ," for o in objs[:-1])
                out.append(f"        {term(objs[-1])} ;")
        out.append(".")
    return ("\n".join(out) + "\n").encode("utf-8")


def _literal(lit: Literal, term) -> str:
    text = json.dumps(str(lit), ensure_ascii=False)  # a valid Turtle STRING_LITERAL_QUOTE
    if lit.language:
        return f"{text}@{lit.language}"
    if lit.datatype is not None:
        return f"{text}^^{term(URIRef(lit.datatype))}"
    return text


def _bnode_label(b: BNode) -> str:
    return "b" + re.sub(r"[^A-Za-z0-9]", "", str(b))


def to_jsonld(g: Graph) -> bytes:
    """Deterministic JSON-LD (flattened: ``@context`` with our prefixes and one ``@graph`` node per subject)."""
    prefixes = _prefixes()
    longest = _by_length(prefixes)

    def iri(t) -> str:
        if isinstance(t, BNode):
            return f"_:{_bnode_label(t)}"
        text = str(t)
        for prefix, ns in longest:
            rest = text[len(ns):]
            if text.startswith(ns) and rest and not rest.startswith("//"):
                return f"{prefix}:{rest}"
        return text

    def value(o) -> dict:
        if isinstance(o, (URIRef, BNode)):
            return {"@id": iri(o)}
        v = {"@value": str(o)}
        if o.language:
            v["@language"] = o.language
        elif o.datatype is not None:
            v["@type"] = iri(o.datatype)
        return v

    nodes = []
    for s in _subjects(g):
        node = {"@id": iri(s)}
        types = sorted(g.objects(s, RDF.type), key=_sort_key)
        if types and all(isinstance(t, URIRef) for t in types):
            node["@type"] = [iri(t) for t in types]
        for p in _predicates(g, s):
            if p == RDF.type and "@type" in node:
                continue
            node[iri(p)] = [value(o) for o in sorted(g.objects(s, p), key=_sort_key)]
        nodes.append(node)
    doc = {"@context": dict(prefixes), "@graph": nodes}
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


@dataclass
class ReleaseFile:
    name: str
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def release_files(store: Store) -> list[ReleaseFile]:
    """``mfmkg-<version>.ttl`` and ``mfmkg-<version>.jsonld`` as bytes (nothing written)."""
    return _build(store)[0]


def _build(store: Store) -> tuple[list[ReleaseFile], int]:
    version = ontology_version(store)
    g = release_graph(store)
    files = [ReleaseFile(f"mfmkg-{version}.ttl", MEDIA_TYPES["ttl"], to_turtle(g)),
             ReleaseFile(f"mfmkg-{version}.jsonld", MEDIA_TYPES["jsonld"], to_jsonld(g))]
    return files, len(g)


def write_release(store: Store, directory: str | Path) -> dict:
    """Write both files and ``SHA256SUMS`` (``sha256sum -c`` format) into ``directory``; returns release_info."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files, n = _build(store)
    for f in files:
        (out / f.name).write_bytes(f.data)
    (out / "SHA256SUMS").write_text("".join(f"{f.sha256}  {f.name}\n" for f in files), encoding="utf-8")
    return _info(store, files, n)


def release_info(store: Store) -> dict:
    """Version, graphs and per-file SHA-256 of the release the store would produce now (cached briefly).

    For ``/-/version.json``: ``{"version", "graphs", "triples", "files": {name: {"mediaType", "bytes",
    "sha256"}}}``. The cache is keyed by the store, its per-graph triple counts and the ontology content hash,
    and is dropped after ``CACHE_SECONDS``, so a changed graph is reported within a minute at the latest.
    """
    return _cached(store)[1]


def cached_release_files(store: Store) -> list[ReleaseFile]:
    """:func:`release_files`, from the same short-lived cache as :func:`release_info` (for the HTTP endpoints)."""
    return _cached(store)[0]


def _cached(store: Store) -> tuple[list[ReleaseFile], dict]:
    from mfmkg.onto import HASH_KEY

    key = (tuple(sorted(store.stats().items())), store.get_meta(HASH_KEY))
    now = time.monotonic()
    with _LOCK:
        hit = _CACHE.get(id(store))
        if hit and hit[0] == key and now - hit[1] < CACHE_SECONDS:
            return hit[2], hit[3]
    files, n = _build(store)
    info = _info(store, files, n)
    with _LOCK:
        _CACHE[id(store)] = (key, now, files, info)
    return files, info


def _info(store: Store, files: list[ReleaseFile], triples: int) -> dict:
    return {
        "version": ontology_version(store),
        "graphs": release_graphs(store),
        "triples": triples,
        "files": {f.name: {"mediaType": f.media_type, "bytes": len(f.data), "sha256": f.sha256} for f in files},
    }
