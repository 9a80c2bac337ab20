"""Quality checks kept as SPARQL files (``queries/checks/<what>-violation.rq``, as D3FEND and the OBO kit do).

Each file is a SELECT whose first variable is the offending IRI; any row is a failure. A header of
``#+ key: value`` lines gives ``title`` (the message printed with the IRI), ``description``, and optionally
``severity: warning`` for checks that should not fail the build. Queries run on an in-memory pyoxigraph store,
the engine the service uses, so a check behaves the same when it is run as a named query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph

from mfmkg.errors import MfmkgError, OntologyError
from mfmkg.namespaces import ONTOLOGY_GRAPH
from mfmkg.resources import checks_dir
from mfmkg.sourcemap import compact

_HEADER = re.compile(r"^#\+( *)(.*?)\s*$")
_KEY = re.compile(r"([\w-]+)\s*:\s*(.*)")
SEVERITIES = ("error", "warning")


@dataclass
class CheckQuery:
    """One ``*-violation.rq`` file and its header."""

    path: Path
    text: str
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".rq")

    @property
    def title(self) -> str:
        return self.meta.get("title") or self.name

    @property
    def severity(self) -> str:
        return self.meta.get("severity", "error")


@dataclass
class Violation:
    """One row of a check query: the offending term and the rest of the row as ``var=value`` text."""

    query: CheckQuery
    iri: str
    detail: str


def load_queries(directory: Path | None = None) -> list[CheckQuery]:
    """The check queries in name order; a header with an unknown severity is a broken check, said so."""
    directory = directory or checks_dir()
    queries = []
    for path in sorted(directory.glob("*-violation.rq")):
        text = path.read_text(encoding="utf-8")
        query = CheckQuery(path, text, parse_header(text))
        if query.severity not in SEVERITIES:
            raise OntologyError(str(path), None, f"severity must be one of {', '.join(SEVERITIES)}")
        queries.append(query)
    return queries


def parse_header(text: str) -> dict[str, str]:
    """``#+ key: value`` lines at the top of a query (grlc style); ``#+`` and two or more spaces continue the
    previous value. The header ends at the first line that is neither a comment nor blank."""
    meta: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        match = _HEADER.match(line)
        if match and key and len(match.group(1)) >= 2:
            meta[key] = f"{meta[key]} {match.group(2)}".strip()
        elif match and _KEY.fullmatch(match.group(2)):
            key, value = _KEY.fullmatch(match.group(2)).groups()
            key = key.lower()
            meta[key] = value
        elif line.strip() and not line.lstrip().startswith("#"):
            break
    return meta


def run_queries(graph: Graph, queries: list[CheckQuery]) -> list[Violation]:
    """Every row of every query over ``graph``; a query that fails to run is a broken check (OntologyError)."""
    from mfmkg.store.embedded import EmbeddedStore

    store = EmbeddedStore(None)
    try:
        store.add(graph, ONTOLOGY_GRAPH)
        return [v for q in queries for v in _run(store, q)]
    finally:
        store.close()


def _run(store, query: CheckQuery) -> list[Violation]:
    try:
        result = store.query(query.text)
    except MfmkgError as exc:
        raise OntologyError(str(query.path), None, f"check query does not run: {exc.detail}") from exc
    variables = getattr(result, "variables", None)
    if not variables:
        raise OntologyError(str(query.path), None, "a check query must be a SELECT with at least one variable")
    found = []
    for row in result.rows:
        if row[0] is None:
            continue
        rest = ", ".join(f"{v}={_show(t)}" for v, t in zip(variables[1:], row[1:]) if t is not None)
        found.append(Violation(query, str(row[0]), rest))
    unique = {(v.iri, v.detail): v for v in found}
    return [unique[k] for k in sorted(unique)]


def _show(term) -> str:
    """IRIs (also IRIs listed in a GROUP_CONCAT literal) as prefixed names."""
    return " ".join(compact(tok) for tok in str(term).split(" "))
