"""Stable publication IRIs: DOI, else arXiv id, else normalised title + year (docs/loading.md, "Identity").

The IRI depends only on the entry, never on what the store already holds, so loading the same paper from any
source, in any order, gives the same node.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

PUB_BASE = "https://w3id.org/mfmkg/id/pub/"
SOURCE_BASE = "https://w3id.org/mfmkg/id/source/"
EVIDENCE_BASE = "https://w3id.org/mfmkg/id/evidence/"

#: How many characters of the title slug go into a title IRI (cut at a word boundary).
SLUG_MAX = 80

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_ARXIV_NEW = re.compile(r"^\d{4}\.\d{4,5}$")
_ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7}$", re.I)
#: arXiv's own DOIs (10.48550/arXiv.NNNN.NNNNN) name the arXiv record: identify the paper by its arXiv id.
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.I)
_LATEX_CMD = re.compile(r"\\[a-zA-Z]+\s*|[{}\\$]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: A DOI of these characters percent-encodes to itself with "/" as %2F (what ``quote(doi, safe="")`` gives).
_PLAIN_DOI = re.compile(r"[a-z0-9._~/-]+")


def valid_doi(doi: str) -> bool:
    return bool(_DOI.match(doi))


def valid_arxiv(arxiv_id: str) -> bool:
    return bool(_ARXIV_NEW.match(arxiv_id) or _ARXIV_OLD.match(arxiv_id))


def arxiv_from_doi(doi: str) -> str | None:
    """The arXiv id an arXiv DOI names, else None."""
    m = _ARXIV_DOI.match(doi)
    return m.group(1) if m and valid_arxiv(m.group(1)) else None


def normalise_title(title: str) -> str:
    """Lower-case ASCII words of a title: accents folded, LaTeX braces and commands and punctuation dropped.

    Two titles that differ only in case, accents, braces, punctuation or spacing normalise alike.
    """
    text = _LATEX_CMD.sub(" ", title)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(_NON_ALNUM.sub(" ", text).split())


def title_slug(title: str) -> str:
    """The normalised title joined with hyphens, cut to at most SLUG_MAX characters at a word boundary.

    A title with no ASCII letters or digits (e.g. in Chinese) keeps its own words, percent-encoded.
    """
    words = normalise_title(title).split()
    if not words:
        text = unicodedata.normalize("NFKC", _LATEX_CMD.sub(" ", title)).lower()
        words = [quote(w, safe="") for w in re.findall(r"\w+", text)]
    slug = ""
    for w in words:
        candidate = f"{slug}-{w}" if slug else w
        if len(candidate) > SLUG_MAX:
            break
        slug = candidate
    return slug or (words[0][:SLUG_MAX] if words else "")


def publication_iri(doi: str | None, arxiv_id: str | None, title: str | None, year: int | None) -> str | None:
    """``pub/doi-<urlencoded doi>`` | ``pub/arxiv-<id>`` | ``pub/t-<slug>-<year>``; None when none applies."""
    if doi:
        from_doi = arxiv_from_doi(doi)
        if from_doi and not arxiv_id:
            arxiv_id = from_doi
        if not from_doi:
            doi = doi.lower()
            if _PLAIN_DOI.fullmatch(doi):
                return PUB_BASE + "doi-" + doi.replace("/", "%2F")
            return PUB_BASE + "doi-" + quote(doi, safe="")
    if arxiv_id:
        if _ARXIV_NEW.match(arxiv_id):  # digits and a dot: nothing to encode
            return PUB_BASE + "arxiv-" + arxiv_id
        return PUB_BASE + "arxiv-" + quote(arxiv_id, safe=".")
    if title and year:
        slug = title_slug(title)
        if slug:
            return f"{PUB_BASE}t-{slug}-{year}"
    return None


def valid_source_name(name: str) -> bool:
    """Source names become IRIs and graph names: letters, digits, '.', '_' and '-', at most 100 characters."""
    return bool(_SOURCE_NAME.match(name))


def source_name_for(path: str) -> str:
    """A default source name for a path: its file or directory name without extension, made IRI-safe."""
    base = path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or "source"
    for ext in (".csl.json", ".atom.xml"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    else:
        if "." in base.strip("."):
            base = base.rsplit(".", 1)[0]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "source"
    return name[:100]


def source_iri(name: str) -> str:
    return SOURCE_BASE + name
