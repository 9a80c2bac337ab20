"""CSL-JSON parser (Zotero's "CSL JSON" export, citeproc's input): a list of items.

Mapping: title; author / editor objects (``given`` [``non-dropping-particle``] ``family`` [``suffix``], or
``literal``); ``issued`` (``date-parts``, else ``raw`` / ``literal``) -> year, month; ``container-title`` (else
``event-title``) -> venue; DOI; URL; abstract; ``keyword`` (split on , or ;); arXiv id from ``number`` (Zotero
stores ``arXiv:2306.13213`` there for preprints), ``archive_location``, ``note`` or an arxiv.org URL. ``type`` is
the bibliographic type, not a label, and is not kept. Lines are those of each item's opening brace.
"""

from __future__ import annotations

import re
from typing import Iterator

from . import _common as c
from .jsonfmt import _kind, objects
from .record import Entry

LABEL = "CSL-JSON"
_ARXIV_REF = re.compile(r"arxiv\s*[:/]?\s*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})", re.I)


def parse(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of a CSL-JSON file, path or stream."""
    name = c.source_name(source, name)
    yield from parse_text(c.read_text(source, name, LABEL), name)


def parse_text(text: str, name: str) -> Iterator[Entry]:
    finish = c.Finisher()
    for line, item, _section in objects(text, name, LABEL):
        if isinstance(item, dict):
            yield finish(_entry(item, name, line))
        else:
            yield c.unreadable(name, line, f"expected a CSL item object, found {_kind(item)}")


def _str(value) -> str | None:
    if isinstance(value, list):  # some exporters give container-title as a list
        value = value[0] if value else None
    return c.squash(str(value)) if isinstance(value, (str, int, float)) else None


def _issued(value, problems: list) -> tuple[int | None, int | None]:
    if isinstance(value, dict):
        parts = value.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            first = parts[0]
            try:
                y = int(first[0])
                m = int(first[1]) if len(first) > 1 and first[1] not in (None, "") else None
            except (TypeError, ValueError):
                problems.append(("year", f"unparseable issued date-parts: {first!r}"))
                return None, None
            if m is not None and not 1 <= m <= 12:
                problems.append(("month", f"unparseable month: {m!r}"))
                m = None
            return c.year(y, problems), m
        value = value.get("raw") or value.get("literal")
    if isinstance(value, (str, int)):
        return c.date(str(value), problems)
    return None, None


def _entry(item: dict, name: str, line: int) -> Entry:
    e = Entry(file=name, line=line)
    p = e.problems
    e.title = _str(item.get("title"))
    people = item.get("author") or item.get("editor") or []
    e.authors = c.authors(people) if isinstance(people, list) else []
    if "issued" in item:
        e.year, e.month = _issued(item["issued"], p)
    e.venue = _str(item.get("container-title")) or _str(item.get("event-title"))
    if _str(item.get("DOI")):
        e.doi = c.doi(_str(item["DOI"]), p)
    e.url = _str(item.get("URL"))
    e.abstract = _str(item.get("abstract"))
    e.keywords = c.split_list(item.get("keyword"))
    for field in ("number", "archive_location", "note"):
        m = _ARXIV_REF.search(_str(item.get(field)) or "")
        if m:
            e.arxiv_id = c.arxiv_id(m.group(1), p)
            break
    c.link_ids(e, e.url, p)
    return e
