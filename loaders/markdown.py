"""Curated Markdown paper lists ("awesome lists").

Headings give the category of what follows (the innermost heading, numbering such as ``A1.``, ``B3.``,
``2.1`` stripped). Each list item or table row gives one paper:

- bullets: ``- [2025/10] **[Title](url)** ![LLM](https://img.shields.io/badge/LLM-589cf4)`` (awesome-lm-ssp),
  ``- **Title** [[paper](url)] [[code](url)] (NeurIPS 2023)``, ``- [Title](url) [ICLR'24]``,
  ``- Title [[pdf](url)]``; details in nested bullets (a date and bare link, as awesome-mllm-safety's README)
  belong to the item above them when they have no title of their own;
- tables with a header naming the columns (Title/Paper, Link/URL/PDF, Venue/Conference, Date/Year,
  Authors, Category/Classification, Tags/Comment/Model/Notes), e.g. ``| Title | Venue | Date | Link |``.

Title: the bold text (or the text of a link in it), else the text of the first link with an absolute URL that
is not a generic "paper"/"code"/"pdf" link, else the plain text before a generic paper link. URL: that link,
else the first generic paper link, else a bare URL; code/project links and badges are not the URL. A date in
brackets ``[YYYY/MM]``, ``[YYYY.MM]``, ``[YYYY-MM(-DD)]`` gives year and month. shields.io badges
(``![Label](https://img.shields.io/badge/...)``) give tags (``%20`` decoded, ``_`` -> space), except venue
badges with a year (``EMNLP_2025``, ``MM'25``, ``ICLR'24_(Spotlight)``) which give the venue
(``EMNLP 2025``, ``MM 2025``, ``ICLR 2024 (Spotlight)``); so do ``[Venue 2024]`` / ``(Venue'24)`` brackets.
The year comes from the date; from the venue only when there is no date. arXiv ids come from arxiv.org
abs/pdf/html links, DOIs from doi.org and publisher ``/doi/10...`` links.

An item becomes an entry when it has an absolute link (or an arXiv id / DOI); items without one (news lines,
group labels, tables of contents, relative links to other files) are not papers and are skipped. Fenced code
blocks and HTML comments are skipped.
"""

from __future__ import annotations

import html
import re
from typing import Iterator
from urllib.parse import unquote

from . import _common as c
from .record import Entry

LABEL = "Markdown"

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,3}[.)])[ \t]+(.*)$")
_TABLE_SEP = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_NUMBERING = re.compile(r"^(?:[A-Z]?\d+(?:\.\d+)*\.?|[A-Z]\.|[IVX]+\.)\s+")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_DATE = re.compile(r"\[\s*((?:19|20)\d{2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*\d{1,2})?\s*\]")
_BRACKET_VENUE = re.compile(r"[\[(]\s*([A-Za-z][\w&@.\- ]*?[A-Za-z&@.)]\s*(?:['’‘`]\s?\d{2}|[\s_\-]+(?:19|20)\d{2})"
                            r"(?:[\s_\-]*\(?[A-Za-z][\w ]*\)?)?)\s*[\])]")
_VENUE_QUOTE = re.compile(r"^(.*?[A-Za-z&@.)\-])\s*['’‘`]\s?(\d{2})(?!\d)(.*)$")
_VENUE_YEAR = re.compile(r"^(.*?[A-Za-z&@.)])[\s\-]*((?:19|20)\d{2})(?!\d)(.*)$")
_BARE_URL = re.compile(r"<?(https?://[^\s<>\]\[]+[^\s<>\]\[.,;:)'\"])>?")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_PAPER_WORDS = {"paper", "pdf", "arxiv", "link", "url", "doi", "html", "openreview", "acl", "abs", "abstract",
                "full paper", "preprint", "publication"}
_OTHER_WORDS = {"code", "github", "project", "project page", "page", "website", "homepage", "demo", "dataset",
                "data", "slides", "video", "blog", "poster", "talk", "bib", "bibtex", "model", "models",
                "huggingface", "hf", "repo", "repository", "star", "stars", "benchmark", "leaderboard"}
_COLUMNS = {
    "title": "title", "paper": "title", "paper title": "title", "name": "title", "work": "title",
    "link": "url", "url": "url", "paper link": "url", "pdf": "url", "arxiv": "url", "doi": "doi",
    "venue": "venue", "conference": "venue", "journal": "venue", "conf": "venue", "published in": "venue",
    "date": "date", "year": "date", "time": "date", "published": "date",
    "author": "authors", "authors": "authors",
    "category": "categories", "categories": "categories", "classification": "categories", "topic": "categories",
    "tags": "tags", "tag": "tags", "labels": "tags", "label": "tags", "comment": "tags", "comments": "tags",
    "notes": "tags", "note": "tags", "model": "tags", "keywords": "keywords",
}


def parse(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of a Markdown paper list, path or stream."""
    name = c.source_name(source, name)
    yield from parse_text(c.read_text(source, name, LABEL), name)


# -- inline ---------------------------------------------------------------------------------------------------

_BRACKET_MARKS = {"[": re.compile(r"\\.|[\[\]]", re.S), "(": re.compile(r"\\.|[()]", re.S)}


def _pairs(s: str, opening: str) -> dict[int, int]:
    """Index of the closing bracket for each opening ``[`` or ``(`` that is closed (nesting and backslash
    escapes respected), in one pass: a line of unclosed brackets costs no more than any other line."""
    pairs, stack = {}, []
    for m in _BRACKET_MARKS[opening].finditer(s):
        ch = m.group()
        if ch == opening:
            stack.append(m.start())
        elif len(ch) == 1 and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _links(s: str) -> list[tuple[int, int, bool, str, str]]:
    """``(start, end, is_image, text, url)`` of each top-level ``[text](url)`` / ``![alt](url)``."""
    if "[" not in s:
        return []
    brackets, parens = _pairs(s, "["), _pairs(s, "(")
    out, i = [], 0
    while True:
        j = s.find("[", i)
        if j < 0:
            return out
        k = brackets.get(j, -1)
        m = parens.get(k + 1, -1) if k >= 0 and s[k + 1:k + 2] == "(" else -1
        if m < 0:
            i = j + 1
            continue
        image = j > 0 and s[j - 1] == "!"
        target = s[k + 2:m].strip().split()
        out.append((j - image, m + 1, image, s[j + 1:k], target[0].strip("<>") if target else ""))
        i = m + 1


def _plain(s: str) -> str:
    """Markdown inline text as plain text: images dropped, links to their text, emphasis marks and escapes gone."""
    parts, last = [], 0
    for start, end, image, text, _url in _links(s):
        parts.append(s[last:start])
        if not image:
            parts.append(_plain(text))
        last = end
    parts.append(s[last:])
    t = "".join(parts).replace("**", "").replace("__", "")
    t = re.sub(r"<[^>]+>", "", t)  # inline HTML tags
    return " ".join(html.unescape(_ESCAPE.sub(r"\1", t)).split())


def _absolute(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _badge_label(alt: str, url: str) -> str:
    label = alt
    if not label.strip():  # shields.io path: /badge/<label>-<message>-<color> or /badge/<message>-<color>
        path = url.split("/badge/", 1)[1].split("?")[0]
        label = re.sub(r"-[0-9A-Za-z]+$", "", path).replace("--", "\x00").split("-")[0].replace("\x00", "-")
    label = unquote(label).replace("__", "\x00").replace("_", " ").replace("\x00", "_")
    return " ".join(label.split()).strip(" -")


def venue_of(label: str) -> tuple[str, int] | None:
    """``("EMNLP 2025", 2025)`` for a venue-with-year label (``EMNLP_2025``, ``MM'25``, ``ICLR'24 (Oral)``)."""
    label = " ".join(label.replace("_", " ").split())
    m = _VENUE_QUOTE.match(label)
    if m:
        yy = int(m.group(2))
        y = 2000 + yy if yy < 70 else 1900 + yy
    else:
        m = _VENUE_YEAR.match(label)
        if not m:
            return None
        y = int(m.group(2))
    name = m.group(1).strip(" -'’")
    rest = m.group(3).strip(" -_")
    if len(re.findall(r"[A-Za-z]", name)) < 2:
        return None
    return (f"{name} {y} {rest}" if rest else f"{name} {y}"), y


class _Item:
    """What one list item (its text and continuation lines) or table cell says, before it is judged a paper."""

    def __init__(self, line: int, indent: int, text: str):
        self.line, self.indent, self.text = line, indent, text
        self.details: list[_Item] = []
        self.title: str | None = None
        self.url: str | None = None
        self.others: list[str] = []   # further paper links (arXiv/DOI sources)
        self.date: tuple[int, int] | None = None
        self.venue: tuple[str, int] | None = None
        self.tags: list[str] = []

    def read(self) -> "_Item":
        s = self.text
        links = _links(s)
        title_link, paper_links = None, []
        for start, end, image, text, url in links:
            if image:
                if "img.shields.io/badge/" in url:
                    label = _badge_label(text, url)
                    v = venue_of(label)
                    if v and self.venue is None:
                        self.venue = v
                    elif label:
                        self.tags.append(label)
                continue
            word = _plain(text).strip("[]() ").lower()
            if "<img" in text or "![" in text or word in _OTHER_WORDS or not _absolute(url):
                continue
            if word in _PAPER_WORDS:
                paper_links.append((start, url))
            elif title_link is None:
                title_link = (start, text, url)
        rest = list(s)  # the text outside links: dates, venue brackets and bare URLs
        for start, end, *_ in links:
            rest[start:end] = " " * (end - start)
        rest = "".join(rest)
        bold = _BOLD.search(s)
        if bold:
            self.title = _plain(bold.group(1) or bold.group(2)) or None
            inside = [lk for lk in links if bold.start() <= lk[0] < bold.end() and not lk[2]]
            if inside and _absolute(inside[0][4]):
                self.url = inside[0][4]
            rest = rest[:bold.start()] + " " * (bold.end() - bold.start()) + rest[bold.end():]
        elif title_link:
            self.title = _plain(title_link[1]) or None
            self.url = title_link[2]
        elif paper_links:  # "Title [[paper](url)]": the text before the first paper link
            before = _DATE.sub(" ", rest[:paper_links[0][0]])
            self.title = _plain(before).strip(" [](){}-–—:;,.|") or None
        urls = [u for _, u in paper_links] + [m.group(1) for m in _BARE_URL.finditer(rest)]
        if self.url is None and urls:
            self.url = urls.pop(0)
        self.others += urls
        d = _DATE.search(rest)
        if d:
            self.date = (int(d.group(1)), int(d.group(2)))
        if self.venue is None:
            b = _BRACKET_VENUE.search(_DATE.sub(" ", rest))
            if b:
                self.venue = venue_of(b.group(1))
        for detail in self.details:
            self.absorb(detail.read())
        return self

    def absorb(self, detail: "_Item") -> None:
        """Take what a nested, untitled item adds (awesome-mllm-safety README's date-and-link lines)."""
        if self.url is None:
            self.url = detail.url
        elif detail.url:
            self.others.append(detail.url)
        self.others += detail.others
        self.date = self.date or detail.date
        self.venue = self.venue or detail.venue
        self.tags += detail.tags

    def entry(self, name: str, category: str | None) -> Entry | None:
        e = Entry(file=name, line=self.line, title=self.title, url=self.url, tags=self.tags,
                  categories=[category] if category else [])
        p = e.problems
        c.link_ids(e, e.url, p)
        for url in self.others:
            if e.arxiv_id is None or e.doi is None:
                c.link_ids(e, url, [])
        if self.url is None and e.arxiv_id is None and e.doi is None:
            return None  # no link: not a paper (a label, a news line, a table of contents)
        if self.date:
            e.year = c.year(self.date[0], p)
            e.month = c.month(self.date[1], p)
        if self.venue:
            e.venue = self.venue[0]
            if e.year is None:
                e.year = self.venue[1]
        return e


# -- blocks ---------------------------------------------------------------------------------------------------

def _category(heading: str) -> str | None:
    return _NUMBERING.sub("", _plain(heading)).strip() or None


def _cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return [cell.strip() for cell in _CELL_SPLIT.split(s)]


def _row(cells: list[str], columns: list[str | None], line: int, name: str, category: str | None):
    item = _Item(line, 0, "")
    extra: dict[str, str] = {}
    for col, cell in zip(columns, cells):
        if col == "title":
            t = _Item(line, 0, cell).read()
            item.title = t.title or _plain(cell) or None
            item.url = item.url or t.url
            item.tags += t.tags
            item.others += t.others
        elif col == "url":
            t = _Item(line, 0, cell).read()
            urls = [t.url] + t.others if t.url else t.others
            if urls:
                if item.url:
                    item.others.insert(0, item.url)
                item.url, item.others = urls[0], urls[1:] + item.others
        elif col:
            extra[col] = _plain(cell)
    e = item.entry(name, category)
    if e is None:
        if not item.title:
            return None
        e = Entry(file=name, line=line, title=item.title, tags=item.tags,
                  categories=[category] if category else [])
    p = e.problems
    if extra.get("date"):
        e.year, e.month = c.date(extra["date"], p)
    if extra.get("venue"):
        v = venue_of(extra["venue"])
        e.venue = v[0] if v else extra["venue"]
        if v and e.year is None:
            e.year = v[1]
    if extra.get("authors"):
        e.authors = c.authors(extra["authors"])
    if extra.get("doi"):
        e.doi = c.doi(extra["doi"], p)
    e.tags += c.split_list(extra.get("tags"))
    e.keywords = c.split_list(extra.get("keywords"))
    e.categories += c.split_list(extra.get("categories"))
    return e


def parse_text(text: str, name: str) -> Iterator[Entry]:
    finish = c.Finisher()
    lines = text.split("\n")
    category: str | None = None
    head: _Item | None = None     # the open list item, collecting continuation lines and nested details
    fence = None
    in_comment = False
    columns: list[str | None] | None = None  # inside a table (all None when it is not a paper table)
    separator = 0  # line number of the table's delimiter row

    def close():
        nonlocal head
        item, head = head, None
        if item is not None:
            e = item.read().entry(name, category)
            if e is not None:
                return finish(e)
        return None

    for n, line in enumerate(lines, 1):
        if fence:
            if line.strip().startswith(fence):
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in line
            continue
        f = _FENCE.match(line)
        if f:
            fence = f.group(1)[:3]
            continue
        if line.lstrip().startswith("<!--") and "-->" not in line:
            in_comment = True
            continue
        if columns is not None:
            if n == separator:
                continue
            if "|" in line:
                e = _row(_cells(line), columns, n, name, category)
                if e is not None:
                    yield finish(e)
                continue
            columns = None
        h = _HEADING.match(line)
        if h:
            if (e := close()) is not None:
                yield e
            category = _category(h.group(2))
            continue
        if "|" in line and n < len(lines) and "|" in lines[n] and _TABLE_SEP.match(lines[n]):
            if (e := close()) is not None:
                yield e
            header = [_COLUMNS.get(_plain(cell).lower()) for cell in _cells(line)]
            columns = header if "title" in header else [None] * len(header)
            separator = n + 1
            continue
        m = _ITEM.match(line)
        if m:
            indent = len(m.group(1).expandtabs(4))
            item = _Item(n, indent, m.group(2))
            if head is not None and indent > head.indent and not _Item(n, indent, m.group(2)).read().title:
                head.details.append(item)
                continue
            if (e := close()) is not None:
                yield e
            head = item
            continue
        if not line.strip():
            continue
        if head is not None and line[:1] in (" ", "\t"):
            if head.details:
                head.details[-1].text += " " + line.strip()
            else:
                head.text += " " + line.strip()  # a continuation line of the open item
            continue
        if (e := close()) is not None:
            yield e
    if (e := close()) is not None:
        yield e
