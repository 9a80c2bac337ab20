"""Named SPARQL queries kept as ``.rq`` files with a ``#+ key: value`` metadata header (grlc/datasette style).

Header keys: ``title``, ``description``, ``tags`` (comma separated) and ``param`` (repeatable):
``#+ param: NAME TYPE [DEFAULT]`` where TYPE is ``iri``, ``string``, ``integer``, ``boolean`` or
``term(CURIE)`` — an IRI that must name an instance or subclass of CURIE in the graph, also accepted as a CURIE
(``mfm:Image``) or a bare local name (``Image``). A parameter with no default is left unbound when not given,
so queries test it with ``!BOUND(?NAME)``. Values are bound as RDF terms by ``mfmkg.binding``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rdflib.namespace import XSD
from rdflib.term import Literal, URIRef

from mfmkg.errors import BadRequest, UnknownQuery
from mfmkg.namespaces import MFM, PREFIXES
from mfmkg.resources import queries_dir
from mfmkg.store.base import SelectResult, Store

_HEADER = re.compile(r"^#\+\s*(\w+)\s*:\s*(.*?)\s*$")
_TERM_TYPE = re.compile(r"^term\((\w+:\w+)\)$")
SCALAR_TYPES = ("iri", "string", "integer", "boolean")


@dataclass
class Param:
    name: str
    type: str
    default: str | None = None

    @property
    def term_class(self) -> str | None:
        """The class IRI a ``term(...)`` parameter's value must belong to."""
        m = _TERM_TYPE.match(self.type)
        return expand_curie(m.group(1)) if m else None


@dataclass
class NamedQuery:
    name: str
    sparql: str
    title: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)

    def metadata(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description, "tags": self.tags,
                "params": [{"name": p.name, "type": p.type, "default": p.default} for p in self.params]}


def expand_curie(text: str) -> str:
    prefix, _, local = text.partition(":")
    if prefix in PREFIXES and not local.startswith("//"):
        return PREFIXES[prefix] + local
    return text


def parse_query_file(path: Path) -> NamedQuery:
    """Read one ``.rq`` file; a malformed header line raises ValueError naming file and line."""
    text = path.read_text(encoding="utf-8")
    q = NamedQuery(name=path.stem, sparql=text)
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if not m:
            continue
        key, value = m.group(1).lower(), m.group(2)
        if key == "param":
            parts = value.split(None, 2)
            if len(parts) < 2 or not (parts[1] in SCALAR_TYPES or _TERM_TYPE.match(parts[1])):
                raise ValueError(f"{path}:{lineno}: param needs 'NAME TYPE [DEFAULT]' with a known type")
            q.params.append(Param(parts[0], parts[1], parts[2] if len(parts) > 2 else None))
        elif key == "tags":
            q.tags = [t.strip() for t in value.split(",") if t.strip()]
        elif key in ("title", "description"):
            setattr(q, key, value)
    return q


def load_queries(directory: Path | None = None) -> dict[str, NamedQuery]:
    directory = directory or queries_dir()
    return {p.stem: parse_query_file(p) for p in sorted(directory.glob("*.rq"))}


def get_query(name_or_path: str) -> NamedQuery:
    """A shipped query by name, or a query file by path."""
    path = Path(name_or_path)
    if path.suffix == ".rq" and path.is_file():
        return parse_query_file(path)
    queries = load_queries()
    if name_or_path not in queries:
        raise UnknownQuery(f"no named query {name_or_path!r}; known: {', '.join(sorted(queries))}")
    return queries[name_or_path]


def bind_params(store: Store, query: NamedQuery, args: dict[str, str]) -> dict:
    """Typed RDF terms for the given arguments (unknown arguments ignored); a bad value is BadRequest naming it."""
    bindings = {}
    for p in query.params:
        raw = args.get(p.name)
        if raw is None or raw == "":
            raw = p.default
        if raw is None or raw == "-":
            continue
        bindings[p.name] = _coerce(store, p, raw)
    return bindings


def _coerce(store: Store, p: Param, raw: str):
    try:
        if p.type == "integer":
            return Literal(int(raw), datatype=XSD.integer)
        if p.type == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return Literal(raw.lower() in ("true", "1"), datatype=XSD.boolean)
        if p.type == "string":
            return Literal(raw)
        if p.type == "iri":
            return _iri(raw)
    except ValueError as exc:
        raise BadRequest(f"parameter {p.name!r}: {exc}") from None
    return _term(store, p, raw)


def _iri(raw: str) -> URIRef:
    iri = expand_curie(raw)
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>\"{}|\\^`]+$", iri):
        raise ValueError(f"not an IRI: {raw!r}")
    return URIRef(iri)


def _term(store: Store, p: Param, raw: str) -> URIRef:
    """Resolve a ``term(...)`` value: full IRI, CURIE or local name, checked against the graph."""
    members = term_members(store, p.term_class)
    candidates = [raw, expand_curie(raw), str(MFM) + raw]
    for c in candidates:
        if c in members:
            return URIRef(c)
    by_label = {label.lower(): iri for iri, label in members.items() if label}
    if raw.lower() in by_label:
        return URIRef(by_label[raw.lower()])
    names = sorted(i.rsplit("#", 1)[-1] for i in members)
    raise BadRequest(f"parameter {p.name!r}: {raw!r} is not a {p.type[5:-1]}; one of: {', '.join(names)}")


def term_members(store: Store, class_iri: str) -> dict[str, str]:
    """IRIs (with their labels) of the instances and subclasses of ``class_iri``."""
    res = store.query(
        "SELECT DISTINCT ?m ?label WHERE { { ?m a/<http://www.w3.org/2000/01/rdf-schema#subClassOf>* ?c } UNION"
        " { ?m <http://www.w3.org/2000/01/rdf-schema#subClassOf>+ ?c }"
        " OPTIONAL { ?m <http://www.w3.org/2000/01/rdf-schema#label> ?label } }",
        bindings={"c": URIRef(class_iri)},
    )
    assert isinstance(res, SelectResult)
    return {str(r[0]): (str(r[1]) if r[1] is not None else "") for r in res.rows}


def run_named(store: Store, query: NamedQuery, args: dict[str, str]):
    """Run a named query with typed, validated arguments."""
    return store.query(query.sparql, bindings=bind_params(store, query, args))
