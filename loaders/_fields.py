"""The documented field schema shared by the CSV, JSON and JSONL formats (header / key names, case-insensitive).

| Entry field | accepted names | value |
|---|---|---|
| title | title | text |
| authors | authors, author | list of names (or CSL name objects), or text separated by ``;``, `` and `` or |
|  |  | commas (``Family, Given`` is inverted) |
| year, month | year, month | number; month also as an English month name |
| (year, month) | date, published | ``2024``, ``2024-05``, ``2024/05``, ``2024.05.17``, ISO date-time, ``May 2024`` |
| venue | venue, journal, booktitle | text |
| doi | doi | DOI, with or without ``https://doi.org/`` |
| arxiv_id | arxiv, arxiv_id, arxivid, eprint | ``2306.13213``, ``arXiv:2306.13213v2`` or an arxiv.org link |
| url | url, link | link; arXiv ids and DOIs in it fill those fields when not given |
| abstract | abstract, summary | text |
| keywords | keywords | list, or text separated by ``,`` or ``;`` |
| tags | tags, labels, notes | list, or text separated by ``,`` or ``;`` (``Notes`` is awesome-mllm-safety's label) |
| categories | category, categories | list, or text separated by ``,`` or ``;`` |

Other names (e.g. Affiliation, Code) are ignored. ``year`` wins over the year of ``date``.
"""

from __future__ import annotations

from . import _common as c
from .record import Entry

ALIASES = {
    "title": "title", "authors": "authors", "author": "authors", "year": "year", "month": "month",
    "date": "date", "published": "date", "venue": "venue", "journal": "venue", "booktitle": "venue",
    "doi": "doi", "arxiv": "arxiv_id", "arxiv_id": "arxiv_id", "arxivid": "arxiv_id", "eprint": "arxiv_id",
    "url": "url", "link": "url", "abstract": "abstract", "summary": "abstract", "keywords": "keywords",
    "tags": "tags", "labels": "tags", "notes": "tags", "category": "categories", "categories": "categories",
}


def canonical(record: dict) -> dict:
    """The record's values under their Entry field names (first of several aliases wins; blanks dropped)."""
    out: dict = {}
    for key, value in record.items():
        field = ALIASES.get(str(key).strip().lower())
        if field is None or value is None or value == "" or value == []:
            continue
        out.setdefault(field, value)
    return out


def _text(e: Entry, field: str, value) -> str | None:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return c.squash(str(value))
    e.problems.append((field, f"expected text, found {type(value).__name__}"))
    return None


def entry(record: dict, name: str, line: int, categories: list[str] | None = None) -> Entry:
    """An Entry from one CSV row / JSON object (keys as in the table above)."""
    f = canonical(record)
    e = Entry(file=name, line=line, categories=list(categories or []))
    p = e.problems
    if "title" in f:
        e.title = _text(e, "title", f["title"])
    if "authors" in f:
        e.authors = c.authors(f["authors"]) if isinstance(f["authors"], (str, list)) else []
    if "date" in f:
        s = _text(e, "year", f["date"])
        if s:
            e.year, e.month = c.date(s, p)
    if "year" in f:
        s = _text(e, "year", f["year"])
        e.year = c.year(s, p) if s else None
    if "month" in f:
        s = _text(e, "month", f["month"])
        e.month = c.month(s, p) if s else None
    for field in ("venue", "abstract", "url"):
        if field in f:
            setattr(e, field, _text(e, field, f[field]))
    if "doi" in f and (s := _text(e, "doi", f["doi"])):
        e.doi = c.doi(s, p)
    if "arxiv_id" in f and (s := _text(e, "arxiv_id", f["arxiv_id"])):
        e.arxiv_id = c.arxiv_id(s, p)
    c.link_ids(e, e.url, p)
    e.keywords = c.split_list(f.get("keywords"))
    e.tags = c.split_list(f.get("tags"))
    e.categories += c.split_list(f.get("categories"))
    return e
