"""The ontology files: finding them, parsing them with file:line errors, and keeping the store's copy current."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path

from rdflib import Graph

from mfmkg.errors import OntologyError
from mfmkg.namespaces import GRAPH, ONTOLOGY_GRAPH
from mfmkg.store.base import Store

SHAPES_FILE = "shapes.ttl"
SHAPES_GRAPH = str(GRAPH["shapes"])
HASH_KEY = "ontology-hash"


def shipped_dir() -> Path:
    """The directory of the shipped Turtle files (source tree or installed package data)."""
    return Path(str(files("mfmkg.ontology")))


def ontology_files(extensions_dir: str | Path | None = None) -> list[Path]:
    """Shipped Turtle files in name order, then the user's extension files in name order."""
    found = sorted(shipped_dir().glob("*.ttl"))
    if extensions_dir:
        ext = Path(extensions_dir)
        if not ext.is_dir():
            raise OntologyError(str(ext), None, "extensions directory does not exist")
        found += sorted(ext.rglob("*.ttl"))
    return found


def parse_file(path: Path, graph: Graph | None = None) -> Graph:
    """Parse one Turtle file into ``graph``; a syntax error becomes OntologyError(file, line, message)."""
    graph = graph if graph is not None else Graph()
    try:
        graph.parse(path, format="turtle")
    except UnicodeDecodeError as exc:
        raise OntologyError(str(path), None, f"not UTF-8 text ({exc.reason})") from exc
    except Exception as exc:  # rdflib's BadSyntax and friends carry no common base class
        line = getattr(exc, "lines", None)
        why = getattr(exc, "_why", None) or str(exc).splitlines()[0]
        raise OntologyError(str(path), line + 1 if isinstance(line, int) else None, why) from exc
    return graph


def parse_ontology(paths: list[Path]) -> tuple[Graph, Graph]:
    """The merged ontology graph and the SHACL shapes graph (``shapes.ttl``, kept apart)."""
    onto, shapes = Graph(), Graph()
    for p in paths:
        parse_file(p, shapes if p.name == SHAPES_FILE and p.parent == shipped_dir() else onto)
    return onto, shapes


def content_hash(paths: list[Path]) -> str:
    """SHA-256 over the files' names and bytes, in order: the store is rebuilt only when it changes."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def ensure_loaded(store: Store, paths: list[Path], force: bool = False) -> bool:
    """Load the ontology into its named graph unless the stored hash matches; True when it (re)loaded."""
    digest = content_hash(paths)
    if not force and store.get_meta(HASH_KEY) == digest:
        return False
    onto, shapes = parse_ontology(paths)  # parse everything first: a broken file leaves the store as it was
    store.replace_graph(ONTOLOGY_GRAPH, onto)
    store.replace_graph(SHAPES_GRAPH, shapes)
    store.set_meta(HASH_KEY, digest)
    return True
