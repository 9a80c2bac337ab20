"""Where a subject is written in the Turtle files, so that a finding about an IRI can say ``file:line``.

RDF parsers keep no positions, so this searches the text: a subject's block starts on a line that begins with
its prefixed name or its full ``<IRI>`` (the layout ``mfmkg fmt`` writes and hand-written files mostly follow).
A subject written any other way is simply not located; the finding then names the IRI alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_PREFIX = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>", re.IGNORECASE)
_SUBJECT = re.compile(r"^(<[^>\s]*>|[A-Za-z][\w.-]*:[^\s;,]*|:[^\s;,]*)(?=\s|$)")


@dataclass
class SourceMap:
    """First line at which each subject IRI starts a statement, per file, built once for a set of files."""

    lines: dict[str, tuple[Path, int]] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)
    texts: list[tuple[Path, list[str], dict[str, str]]] = field(default_factory=list)

    @classmethod
    def build(cls, paths: list[Path]) -> "SourceMap":
        smap = cls()
        for path in paths:
            smap._scan(path)
        return smap

    def _scan(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return  # the parse stage reports unreadable files; here they just stay unlocated
        prefixes: dict[str, str] = {}
        lines = text.splitlines()
        self.texts.append((path, lines, prefixes))
        for index, line in enumerate(lines):
            decl = _PREFIX.match(line)
            if decl:
                prefixes[decl.group(1) or ""] = decl.group(2)
                continue
            token = _SUBJECT.match(line)
            iri = _expand(token.group(1), prefixes) if token else None
            if iri:
                self._note(iri, path, index + 1, _types(line[token.end():], lines[index + 1:index + 2]))

    def _note(self, iri: str, path: Path, number: int, declares: bool) -> None:
        """Keep the first occurrence, but prefer the block that types the subject (its declaration) over
        blocks elsewhere that only add to it (a crosswalk mapping, an extension's keyword)."""
        if iri not in self.lines or (declares and iri not in self.declared):
            self.lines[iri] = (path, number)
            if declares:
                self.declared.add(iri)

    def locate(self, iri: str) -> tuple[Path, int] | None:
        """(file, line) where ``iri`` first starts a statement, else where it is first used, else None."""
        return self.lines.get(str(iri)) or self._first_use(str(iri))

    def _first_use(self, iri: str) -> tuple[Path, int] | None:
        """First line mentioning ``iri`` as ``<iri>`` or as a prefixed name of its file (a typo'd value)."""
        for path, lines, prefixes in self.texts:
            names = [f"<{iri}>"] + [f"{p}:{iri[len(ns):]}" for p, ns in prefixes.items()
                                    if iri.startswith(ns) and len(iri) > len(ns)]
            pattern = re.compile("|".join(r"(?<![\w:<])" + re.escape(n) + r"(?![\w-])" for n in names))
            for number, line in enumerate(lines, start=1):
                if not line.lstrip().startswith("#") and pattern.search(line):
                    return path, number
        return None


def _types(rest: str, following: list[str]) -> bool:
    """Whether a subject's block starts with ``a`` (rdf:type), on the subject's line or the next one."""
    after = rest.strip() or (following[0].strip() if following else "")
    return after == "a" or after.startswith("a ") or after.startswith("rdf:type")


def _expand(token: str, prefixes: dict[str, str]) -> str | None:
    """The full IRI of a subject token, or None for a prefix the file does not declare."""
    if token.startswith("<"):
        return token[1:-1]
    prefix, _, local = token.partition(":")
    base = prefixes.get(prefix)
    return base + local.replace("\\", "") if base is not None else None


def compact(iri: str) -> str:
    """``mfm:Foo`` for an IRI in one of our prefixes (what the user searches for in the files), else the IRI."""
    from mfmkg.namespaces import PREFIXES

    best = max((ns for ns in PREFIXES.values() if iri.startswith(ns)), key=len, default=None)
    if best is None or not _LOCAL.fullmatch(iri[len(best):]):
        return iri
    prefix = next(p for p, ns in PREFIXES.items() if ns == best)
    return f"{prefix}:{iri[len(best):]}"


_LOCAL = re.compile(r"[A-Za-z0-9_][\w.-]*(?<!\.)")


def parse_located(path: Path, graph):
    """``mfmkg.onto.parse_file`` with the exact line of a Turtle syntax error.

    rdflib's notation3 parser counts a newline again each time it re-skips the same whitespace, so its line
    number drifts far past the error (line 1171 for an error on line 900 of taxonomy.ttl); the error also
    carries the document and the character offset, from which the line is exact.
    """
    from mfmkg.errors import OntologyError
    from mfmkg.onto import parse_file

    try:
        return parse_file(path, graph)
    except OntologyError as exc:
        raw, offset = getattr(exc.__cause__, "_str", None), getattr(exc.__cause__, "_i", None)
        if not isinstance(raw, bytes) or not isinstance(offset, int):
            raise
        line = raw.decode("utf-8", "replace")[:offset].count("\n") + 1
        raise OntologyError(exc.path, line, exc.message) from exc.__cause__
