"""Named SPARQL queries kept as ``.rq`` files with a ``#+ key: value`` metadata header (grlc/datasette style).

Header keys: ``title``, ``description``, ``tags`` (comma separated) and ``param`` (repeatable):
``#+ param: NAME TYPE [DEFAULT] [-- description]``. TYPE is one of

- ``iri``, ``string``, ``integer``, ``boolean``;
- ``term(CURIE)``: an IRI that must name an instance or subclass of CURIE in the graph;
- ``enum(CURIE,CURIE,...)``: one of a fixed list of ontology terms (no spaces in the list).

Term and enum values are accepted as a full IRI, a CURIE (``mfm:Image``), a local name (``Image``, any case) or a
label. A TYPE ending in ``!`` (``string!``) is required: leaving it out is a 400. An optional parameter with no
default is left unbound when not given, so queries test it with ``!BOUND(?NAME)``. Arguments starting with ``_``
(paging, format) and unknown arguments are ignored. Values are bound as RDF terms by ``mfmkg.binding``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rdflib.namespace import XSD
from rdflib.term import Literal, URIRef

from mfmkg.binding import term_sparql
from mfmkg.errors import BadRequest, UnknownQuery
from mfmkg.namespaces import PREFIXES
from mfmkg.resources import queries_dir
from mfmkg.store.base import SelectResult, Store

_HEADER = re.compile(r"^#\+\s*(\w+)\s*:\s*(.*?)\s*$")
_TERM_TYPE = re.compile(r"^term\(([\w-]+:[\w-]+)\)$")
_ENUM_TYPE = re.compile(r"^enum\(([\w:,#/.-]+)\)$")
SCALAR_TYPES = ("iri", "string", "integer", "boolean")


@dataclass
class Param:
    name: str
    type: str
    default: str | None = None
    required: bool = False
    description: str = ""

    @property
    def term_class(self) -> str | None:
        """The class IRI a ``term(...)`` parameter's value must belong to."""
        m = _TERM_TYPE.match(self.type)
        return expand_curie(m.group(1)) if m else None

    @property
    def enum_terms(self) -> list[str] | None:
        """The IRIs an ``enum(...)`` parameter allows, in header order."""
        m = _ENUM_TYPE.match(self.type)
        return [expand_curie(t.strip()) for t in m.group(1).split(",") if t.strip()] if m else None

    def metadata(self) -> dict:
        return {"name": self.name, "type": self.type, "default": self.default, "required": self.required,
                "description": self.description}


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
                "params": [p.metadata() for p in self.params]}


def expand_curie(text: str) -> str:
    prefix, _, local = text.partition(":")
    if prefix in PREFIXES and not local.startswith("//"):
        return PREFIXES[prefix] + local
    return text


def local_name(iri: str) -> str:
    """The part of an IRI after its last ``#`` or ``/``."""
    return re.split(r"[#/]", iri)[-1]


def parse_param(value: str) -> Param:
    """``NAME TYPE[!] [DEFAULT] [-- description]``; raises ValueError when malformed."""
    spec, _, description = value.partition(" -- ")
    parts = spec.split(None, 2)
    if len(parts) < 2:
        raise ValueError("param needs 'NAME TYPE [DEFAULT] [-- description]'")
    name, ptype = parts[0], parts[1]
    required = ptype.endswith("!")
    ptype = ptype.rstrip("!")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.startswith("_"):
        raise ValueError(f"param name {name!r} must be a SPARQL variable name not starting with '_'")
    if not (ptype in SCALAR_TYPES or _TERM_TYPE.match(ptype) or _ENUM_TYPE.match(ptype)):
        raise ValueError(f"param {name!r} has unknown type {ptype!r}")
    default = parts[2].strip() if len(parts) > 2 else None
    return Param(name, ptype, default, required, description.strip())


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
            try:
                q.params.append(parse_param(value))
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from None
        elif key == "tags":
            q.tags = [t.strip() for t in value.split(",") if t.strip()]
        elif key in ("title", "description"):
            setattr(q, key, value)
    return q


@lru_cache(maxsize=256)
def _parse_cached(path: str, mtime_ns: int, size: int) -> NamedQuery:
    return parse_query_file(Path(path))


def load_queries(directory: Path | None = None) -> dict[str, NamedQuery]:
    """Every ``*.rq`` in the directory (the shipped queries by default), by name; re-read when a file changes."""
    directory = directory or queries_dir()
    out = {}
    for p in sorted(directory.glob("*.rq")):
        st = p.stat()
        out[p.stem] = _parse_cached(str(p), st.st_mtime_ns, st.st_size)
    return out


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
            if p.required:
                raise BadRequest(f"parameter {p.name!r} is required ({p.type})")
            raw = p.default
        if raw is None or raw == "-":
            continue
        bindings[p.name] = _coerce(store, p, raw)
    return bindings


def _coerce(store: Store, p: Param, raw: str):
    try:
        if p.type == "integer":
            if not re.fullmatch(r"[+-]?\d{1,18}", raw.strip()):
                raise ValueError(f"expected an integer, got {raw!r}")
            return Literal(int(raw), datatype=XSD.integer)
        if p.type == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"expected true or false, got {raw!r}")
            return Literal(raw.lower() in ("true", "1"), datatype=XSD.boolean)
        if p.type == "string":
            return Literal(raw)
        if p.type == "iri":
            return _iri(raw)
    except ValueError as exc:
        raise BadRequest(f"parameter {p.name!r}: {exc}") from None
    if p.enum_terms is not None:
        return _pick(p, raw, enum_members(store, p.enum_terms), "one of the listed terms")
    return _pick(p, raw, term_members(store, p.term_class), f"a {p.type[5:-1]}")


def _iri(raw: str) -> URIRef:
    iri = expand_curie(raw)
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>\"{}|\\^`]+$", iri):
        raise ValueError(f"not an IRI: {raw!r}")
    return URIRef(iri)


def _pick(p: Param, raw: str, members: dict[str, str], what: str) -> URIRef:
    """Resolve a term value (IRI, CURIE, local name in any case, or label) among ``members``."""
    found = match_term(raw, members)
    if found:
        return URIRef(found)
    names = sorted({local_name(i) for i in members})
    shown = ", ".join(names[:60]) + (" ..." if len(names) > 60 else "")
    raise BadRequest(f"parameter {p.name!r}: {raw!r} is not {what}; one of: {shown}")


def match_term(raw: str, members: dict[str, str]) -> str | None:
    """The member IRI ``raw`` names (full IRI, CURIE, local name, label; case-insensitive after exact), or None."""
    expanded = expand_curie(raw)
    if raw in members or expanded in members:
        return raw if raw in members else expanded
    by_local = {}
    for iri in sorted(members):
        by_local.setdefault(local_name(iri), iri)
    if raw in by_local:
        return by_local[raw]
    lowered = {k.lower(): v for k, v in by_local.items()}
    lowered.update({label.lower(): iri for iri, label in members.items() if label})
    return lowered.get(raw.lower())


def term_members(store: Store, class_iri: str) -> dict[str, str]:
    """IRIs (with their labels) of the instances and subclasses of ``class_iri``.

    Two plain queries rather than one UNION: pyoxigraph evaluates a UNION's branches without the outer bound
    class, so the one-query form enumerated every typed node (1.2 s at 100k papers; these take about a millisecond).
    """
    rdfs = "http://www.w3.org/2000/01/rdf-schema#"
    found: dict[str, str] = {}
    for pattern in (f"?sub <{rdfs}subClassOf>* ?c . ?m a ?sub .", f"?m <{rdfs}subClassOf>+ ?c ."):
        res = store.query(f"SELECT ?m (SAMPLE(?l) AS ?label) WHERE {{ {pattern} FILTER(isIRI(?m)) "
                          f"OPTIONAL {{ ?m <{rdfs}label> ?l }} }} GROUP BY ?m", bindings={"c": URIRef(class_iri)})
        assert isinstance(res, SelectResult)
        for r in res.rows:
            found.setdefault(str(r[0]), str(r[1]) if r[1] is not None else "")
    return found


def enum_members(store: Store, iris: list[str]) -> dict[str, str]:
    """The enum's IRIs with their labels (so a label is accepted as for term parameters)."""
    labels = dict.fromkeys(iris, "")
    values = " ".join(term_sparql(URIRef(i)) for i in iris)
    res = store.query("SELECT ?m (SAMPLE(?l) AS ?label) WHERE { VALUES ?m { " + values + " }"
                      " ?m <http://www.w3.org/2000/01/rdf-schema#label> ?l } GROUP BY ?m")
    if isinstance(res, SelectResult):
        labels.update({str(r[0]): str(r[1]) for r in res.rows if str(r[0]) in labels and r[1] is not None})
    return labels


def allowed_values(store: Store, p: Param) -> list[str] | None:
    """Local names a term or enum parameter accepts (for documentation and forms); None for other types."""
    if p.enum_terms is not None:
        return [local_name(i) for i in p.enum_terms]
    if p.term_class:
        return sorted({local_name(i) for i in term_members(store, p.term_class)})
    return None


def run_named(store: Store, query: NamedQuery, args: dict[str, str]):
    """Run a named query with typed, validated arguments."""
    return store.query(query.sparql, bindings=bind_params(store, query, args))
