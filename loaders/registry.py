"""One entry point for every literature format: detect the format of an input, parse it, expand directories.

Formats (``FORMATS``): ``bibtex`` (.bib, .bibtex), ``csv`` (.csv), ``json`` (.json), ``jsonl`` (.jsonl,
.ndjson), ``csljson`` (.csl.json, or .json whose items look like CSL: ``issued`` / ``container-title`` /
author objects with ``family``/``given``/``literal``), ``arxiv-atom`` (.atom, or .xml holding an Atom
``<feed>``), ``markdown`` (.md, .markdown). Every parser is ``parse(source, name=None) -> Iterator[Entry]``
with ``source`` a path, bytes or a binary/text stream; errors are raised while iterating.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterable, Iterator

from mfmkg.errors import LoadError

from . import _common as c
from . import arxiv_atom, bibtex, csljson, csvfmt, jsonfmt, markdown
from .record import Entry

FORMATS: dict[str, Callable[..., Iterator[Entry]]] = {
    "bibtex": bibtex.parse,
    "csv": csvfmt.parse,
    "json": jsonfmt.parse,
    "jsonl": jsonfmt.parse_jsonl,
    "csljson": csljson.parse,
    "arxiv-atom": arxiv_atom.parse,
    "markdown": markdown.parse,
}

EXTENSIONS = {".bib": "bibtex", ".bibtex": "bibtex", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".atom": "arxiv-atom", ".md": "markdown", ".markdown": "markdown"}
SNIFFED_EXTENSIONS = (".json", ".xml")  # the extension alone does not say which format
HEAD_BYTES = 16384
# Repository files beside the lists: skipped when a directory is expanded, read when named explicitly.
SKIPPED_NAMES = re.compile(r"^(readme|license|licence|notice|copying|changelog|changes|contributing|authors|"
                           r"code_of_conduct|security|citation)(\.|$)", re.I)

_CSL_HINT = re.compile(r'"(issued|container-title|date-parts|family|given|citation-key)"\s*:')
_ATOM_HINT = re.compile(r"<(?:\w+:)?feed\b[^>]*http://www\.w3\.org/2005/Atom")
_BIB_HINT = re.compile(r"^[ \t]*@\w+[ \t]*[{(]", re.M)
_MD_HINT = re.compile(r"^(?: {0,3}#{1,6}[ \t]+\S|[ \t]*(?:[-*+]|\d+\.)[ \t]+.*\]\(https?://|\|.*\|[ \t]*$)", re.M)


def _ext(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".csl.json"):
        return ".csl.json"
    return os.path.splitext(lower)[1]


def detect_format(path_or_name: str | os.PathLike, head_bytes: bytes | str) -> str:
    """The format name of an input from its name's extension, else from the first bytes of its content."""
    name = os.fspath(path_or_name)
    ext = _ext(name)
    if ext == ".csl.json":
        return "csljson"
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    head = head_bytes.decode("utf-8", "replace") if isinstance(head_bytes, (bytes, bytearray)) else head_bytes
    if "\x00" in head:
        raise LoadError(name, None, None, "binary file: not a literature format")
    fmt = _sniff(head.lstrip("\ufeff \t\r\n"))
    if ext == ".json" and fmt in ("json", "jsonl", "csljson"):
        return fmt
    if ext == ".xml":
        if fmt == "arxiv-atom":
            return fmt
        raise LoadError(name, None, None, "XML but not an Atom <feed> (only arXiv API Atom feeds are read)")
    if ext == ".json":
        raise LoadError(name, None, None, "does not start like JSON ('[' or '{')")
    if fmt is None:
        raise LoadError(name, None, None, "unknown literature format: expected one of "
                        ".bib, .csv, .json, .jsonl, .csl.json, .atom/.xml (arXiv API), .md, "
                        "or content recognisable as one of them")
    return fmt


def _sniff(head: str) -> str | None:
    if head.startswith("<"):
        return "arxiv-atom" if _ATOM_HINT.search(head) else None
    if head.startswith(("[", "{")):
        first, _, more = head.partition("\n")
        if head[0] == "{" and first.rstrip().endswith("}") and more.lstrip().startswith("{"):
            return "jsonl"
        return "csljson" if head[0] == "[" and _CSL_HINT.search(head) else "json"
    bib, md = _BIB_HINT.search(head), _MD_HINT.search(head)
    if bib or md:  # whichever shows first: a list may quote BibTeX in a code block, a .bib rarely has '# '
        return "bibtex" if bib and (not md or bib.start() < md.start()) else "markdown"
    first = head.split("\n", 1)[0].lower()
    if "," in first and "title" in [cell.strip().strip('"') for cell in first.split(",")]:
        return "csv"
    return None


def parse(path_or_stream: c.Source, fmt: str | None = None, name: str | None = None) -> Iterator[Entry]:
    """Entries of one input (path, bytes or stream) in format ``fmt``, or the detected one."""
    name = c.source_name(path_or_stream, name)
    if fmt is not None and fmt not in FORMATS:
        raise LoadError(name, None, None, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    data = c.read_bytes(path_or_stream, name)
    if isinstance(data, str):  # a text stream: the format parsers take bytes, paths or streams
        data = data.encode("utf-8", "surrogatepass")
    if fmt is None:
        fmt = detect_format(name, data[:HEAD_BYTES])
    yield from FORMATS[fmt](data, name=name)


def _in_directory(path: str) -> str | None:
    """The format of a file met while expanding a directory, or ``None`` to skip it."""
    base = os.path.basename(path)
    if base.startswith(".") or SKIPPED_NAMES.match(base):
        return None
    ext = _ext(base)
    if ext in EXTENSIONS or ext == ".csl.json":
        return detect_format(path, b"")
    if ext in SNIFFED_EXTENSIONS:
        try:
            with open(path, "rb") as f:
                return detect_format(path, f.read(HEAD_BYTES))
        except (LoadError, OSError):
            return None
    return None


def iter_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Files to load: explicit files as given (LoadError if missing or of unknown format), directories expanded
    recursively in sorted order to the files whose format is known (hidden files and folders, README, LICENSE,
    NOTICE and similar repository files skipped)."""
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if _in_directory(full):
                        yield full
        elif os.path.exists(p):
            with open(p, "rb") as f:
                detect_format(p, f.read(HEAD_BYTES))
            yield p
        else:
            raise LoadError(p, None, None, "no such file or directory")
