"""``mfmkg fmt``: one canonical Turtle layout for the hand-edited ontology files, so one change is one diff line.

The layout is rdflib's ``longturtle`` (one predicate and one object per line, blocks ended by a lone ``.``),
with three changes that keep unrelated lines still when something is edited:

* blank nodes are renamed in the order of their content and their position below named subjects, so sibling
  blank nodes (restrictions, shapes' property constraints) come out in the same order whatever order they
  were written in, and the output does not depend on the parser's random blank node ids. (rdflib's own
  ``canon=True`` is not used: it merged distinct list nodes in our tests, which the isomorphism check caught.)
* subjects are ordered by IRI (the ``owl:Ontology`` header first), where rdflib orders them by how often they
  are referenced, which moves a whole block when one reference is added elsewhere;
* the prefix block is fixed: every standard mfmkg prefix, always, in name order, plus any other prefix the
  body uses.

RDF has no comments, so a round trip keeps only the file's leading comment block (copied verbatim); comments
further down are dropped, and the caller is told how many.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rdflib import BNode, Graph, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import OWL, RDF
from rdflib.plugins.serializers.longturtle import LongTurtleSerializer

from mfmkg.errors import OntologyError
from mfmkg.namespaces import PREFIXES
from mfmkg.sourcemap import parse_located

_PREFIX_LINE = re.compile(r"^PREFIX ([^:\s]*): <([^>]*)>$")


class _CanonicalTurtle(LongTurtleSerializer):
    """longturtle with named subjects in IRI order (owl:Ontology first) instead of by reference count."""

    def orderSubjects(self):  # noqa: N802 (rdflib's method name)
        header = sorted(s for s in self.store.subjects(RDF.type, OWL.Ontology) if isinstance(s, URIRef))
        iris = sorted(s for s in self._subjects if isinstance(s, URIRef) and s not in header)
        # Unreferenced blank nodes first, as rdflib does, so nested ones are written inline inside them.
        bnodes = sorted((s for s in self._subjects if not isinstance(s, URIRef)),
                        key=lambda s: (self._references[s], s))
        for s in header:
            self._topLevels[s] = True
        return header + iris + bnodes

    def s_squared(self, subject):
        """An unreferenced blank node subject as ``[]`` on its own line, like every other subject."""
        if self._references[subject] > 0 or not isinstance(subject, BNode):
            return False
        self.write("\n" + self.indent() + "[]\n")
        self.predicateList(subject)
        self.write("\n.")
        return True


def relabel_bnodes(graph: Graph) -> Graph:
    """A copy of ``graph`` whose blank nodes are named ``b0``, ``b1``, ... in the order of a content key.

    The key of a blank node is what hangs below it (recursively) and the path from named subjects down to it,
    so it depends on the data only. Nodes with equal keys are interchangeable and print the same.
    """
    keys = _BNodeKeys(graph)
    nodes = sorted({n for t in graph for n in t if isinstance(n, BNode)}, key=lambda n: (keys.key(n), str(n)))
    width = len(str(len(nodes)))
    names = {n: BNode(f"b{i:0{width}d}") for i, n in enumerate(nodes)}
    out = Graph(bind_namespaces="none")
    for prefix, ns in graph.namespaces():
        out.bind(prefix, ns, override=True, replace=True)
    for triple in graph:
        out.add(tuple(names.get(n, n) for n in triple))
    return out


class _BNodeKeys:
    """Content keys of blank nodes: outgoing content (down) plus where they hang from (up); cycles cut."""

    def __init__(self, graph: Graph):
        self.graph, self._down, self._up = graph, {}, {}

    def key(self, node: BNode) -> tuple[str, str]:
        return self.down(node, frozenset()), self.up(node, frozenset())

    def down(self, node, seen: frozenset) -> str:
        if not isinstance(node, BNode):
            return node.n3()
        if node in seen:
            return "_:cycle"
        if node not in self._down:
            parts = sorted(f"{p.n3()} {self.down(o, seen | {node})}" for p, o in self.graph.predicate_objects(node))
            self._down[node] = "[" + " ; ".join(parts) + "]"
        return self._down[node]

    def up(self, node, seen: frozenset) -> str:
        if not isinstance(node, BNode):
            return node.n3()
        if node in seen:
            return "_:cycle"
        if node not in self._up:
            parts = sorted(f"{self.up(s, seen | {node})} {p.n3()}" for s, p in self.graph.subject_predicates(node))
            self._up[node] = "(" + " | ".join(parts) + ")"
        return self._up[node]


@dataclass
class Formatted:
    """A file's canonical text, and how many comment lines outside its header the round trip dropped."""

    path: Path
    text: str
    changed: bool
    dropped_comments: int


def header_comments(text: str) -> str:
    """The leading block of comment and blank lines, trailing blanks and spaces removed."""
    lines = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line.rstrip())
    return "\n".join(lines).strip("\n")


def canonical_text(text: str, graph: Graph, source: str = "<input>") -> str:
    """The canonical file for ``graph`` (parsed from ``text``): header comments, fixed prefixes, body.

    The result is parsed again and compared with ``graph``: formatting must never change the data.
    """
    for prefix, iri in PREFIXES.items():
        graph.bind(prefix, iri, override=True, replace=True)
    out = io.BytesIO()
    _CanonicalTurtle(relabel_bnodes(graph)).serialize(out, encoding="utf-8")
    used, body = _split_prefixes(out.getvalue().decode("utf-8"))
    header = header_comments(text)
    head = ([header] if header else []) + [_prefix_block(used, source)]
    raw = "\n\n".join([*head, body] if body else head) + "\n"
    # longturtle leaves a trailing space before a list of blank nodes; strip it unless a literal needs it.
    tidy = "\n".join(line.rstrip() for line in raw.splitlines()) + "\n"
    for candidate in dict.fromkeys([tidy, raw]):
        again = Graph()
        again.parse(data=candidate, format="turtle")
        if isomorphic(again, graph):
            return candidate
    raise OntologyError(source, None, "formatting would change the data (an rdflib bug?); file left as is")


def _split_prefixes(serialised: str) -> tuple[dict[str, str], str]:
    """rdflib's PREFIX lines (the prefixes the body uses) and the body after them."""
    used, body = {}, []
    for line in serialised.splitlines():
        match = _PREFIX_LINE.match(line)
        if match and not body:
            used[match.group(1)] = match.group(2)
        elif line.strip() or body:
            body.append(line)
    return used, "\n".join(body).strip("\n")


def _prefix_block(used: dict[str, str], source: str) -> str:
    names = dict(PREFIXES)
    for prefix, iri in used.items():
        if names.setdefault(prefix, iri) != iri:
            raise OntologyError(source, None, f"prefix {prefix}: is bound to {iri}, not {names[prefix]}")
    return "\n".join(f"PREFIX {p}: <{names[p]}>" for p in sorted(names))


def format_file(path: Path) -> Formatted:
    """Parse ``path`` (OntologyError with file:line when it does not parse) and compute its canonical text."""
    graph = parse_located(path, Graph(bind_namespaces="none"))
    text = path.read_text(encoding="utf-8")
    new = canonical_text(text, graph, str(path))
    return Formatted(path, new, new != text, _dropped_comments(text, new))


def _dropped_comments(old: str, new: str) -> int:
    """How many comment lines below the header ``old`` had and ``new`` has not (lines inside multi-line
    literals that start with ``#`` are in both and cancel out)."""
    def below_header(text: str) -> int:
        rest = text.splitlines()[len(header_comments(text).splitlines()):]
        return sum(1 for ln in rest if ln.lstrip().startswith("#"))
    return max(0, below_header(old) - below_header(new))


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: readers see the old or the new file."""
    path = path.resolve()  # through a symlink to the file it names, not replacing the link
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def format_files(paths: list[Path], *, check: bool = False) -> list[Formatted]:
    """Canonical forms of all ``paths``; unless ``check``, write the changed ones.

    Every file is parsed before any is written, so one broken file leaves all files untouched.
    """
    results, errors = [], []
    for path in paths:
        try:
            results.append(format_file(Path(path)))
        except OntologyError as exc:
            errors.append(exc)
    if errors:
        raise FormatErrors(errors)
    if not check:
        for r in results:
            if r.changed:
                write_atomic(r.path, r.text)
    return results


class FormatErrors(OntologyError):
    """Several files did not parse; ``errors`` holds each file's OntologyError (file:line: message)."""

    def __init__(self, errors: list[OntologyError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.path, first.line, first.message)
        self.detail = "\n".join(e.detail for e in errors)
