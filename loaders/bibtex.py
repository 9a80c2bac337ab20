"""BibTeX (``.bib``) parser.

The file is cut into blocks at each ``@type{`` / ``@type(`` that starts a line, the rule bibtexparser's own
splitter uses to recover from a broken block. A fast scanner reads the common, regular block shape
(``{...}``-delimited, brace nesting up to 5 levels, ``"..."`` and bare values, ``#`` concatenation); any block
it does not fully accept is handed to bibtexparser 2.x, which is the authority: it reads the irregular but
valid ones and names the syntax error of the broken ones (its ``failed_blocks``). On the blocks the scanner
accepts, both give the same fields (``tests/test_loader_formats.py`` checks that on generated blocks).
bibtexparser alone reads about 16,000 small entries/s on this machine; the scanner is what makes 100k entries
fast.

Mapping: title; author (split on `` and ``, ``Family, Given`` -> ``Given Family``, LaTeX accents and braces
removed); year (or biblatex ``date``); month (number or name); booktitle / journal / journaltitle -> venue;
doi (resolver prefix stripped, lower-cased); eprint (arXiv archive) / arxiv / arxivid fields, arxiv.org URLs and
``arXiv:NNNN.NNNNN`` in the venue -> arxiv_id; url; abstract; keywords (split on , or ;).

Problems: duplicate citation key (field ``key``), a field given twice (first value kept), malformed block
(field ``entry``: nothing else could be read). A block still open at the end of the file -> LoadError.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Iterator

from mfmkg.errors import LoadError

from . import _common as c
from .record import Entry

LABEL = "BibTeX"

_BLOCK_START = re.compile(r"^[ \t]*@(\w*)[ \t]*([{(])", re.M)


def _braced(depth: int) -> str:
    inner = r"[^{}]*"
    for _ in range(depth):
        inner = r"[^{}]*(?:\{" + inner + r"\}[^{}]*)*"
    return inner


_BR = _braced(4)
# A quoted value ends at a '"' not preceded by a backslash (bibtexparser's rule); braces inside it balanced.
_QUOTED = r'"(?:[^"{}\\]|\\+(?:"|[^"{}\\])|\{[^"{}]*\})*"'
_PART = r'(?:\{%s\}|%s|[^\s,{}"#=()@%%\\]+)' % (_BR, _QUOTED)
_VALUE = r"%s(?:\s*#\s*%s)*" % (_PART, _PART)
_HEAD = re.compile(r"\s*+([^\s,{}()\"=#%\\]*+)\s*+(,|\})")  # possessive: linear on long runs of spaces
_FIELD = re.compile(r"\s*([^\s=,{}\"#()%%\\]+)\s*=\s*(%s)\s*(,|\})" % _VALUE)
_CLOSE = re.compile(r"\s*\}")
_STRING = re.compile(r"\s*([^\s=,{}\"#()%%\\]+)\s*=\s*(%s)\s*\}" % _VALUE)
_AND = re.compile(r"\s+and\s+", re.I)
_SPECIAL = re.compile(r"[{}\\$~]|--")
_ARXIV_IN_TEXT = re.compile(r"arxiv[:\s]*(\d{4}\.\d{4,5}(?:v\d+)?)", re.I)

_FIELD_ATTR = {"title": "title", "author": "authors", "year": "year", "date": "year", "month": "month",
               "booktitle": "venue", "journal": "venue", "journaltitle": "venue", "doi": "doi",
               "eprint": "arxiv_id", "arxiv": "arxiv_id", "arxivid": "arxiv_id", "arxiv_id": "arxiv_id",
               "url": "url", "abstract": "abstract", "keywords": "keywords"}
_USED = set(_FIELD_ATTR) | {"archiveprefix", "eprinttype"}


def parse(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of a BibTeX file, path or stream, in file order."""
    name = c.source_name(source, name)
    yield from parse_text(c.read_text(source, name, LABEL), name)


def parse_text(text: str, name: str) -> Iterator[Entry]:
    """Entries of BibTeX ``text`` read from ``name``."""
    finish = c.Finisher()
    keys: dict[str, int] = {}
    macros: dict[str, str] = {}
    starts = [m.start() for m in _BLOCK_START.finditer(text)]
    if not starts:
        if any(ln.strip() and not ln.lstrip().startswith("%") for ln in text.split("\n")):
            raise LoadError(name, 1, None, "no BibTeX entries found (expected @type{key, ...})")
        return
    bounds = ([0] if starts[0] > 0 else []) + starts + [len(text)]
    line = 1
    for i in range(len(bounds) - 1):
        start, end = bounds[i], bounds[i + 1]
        if i:
            line += text.count("\n", bounds[i - 1], start)
        last = end == len(text)
        blocks = _scan(text, start, end, line)
        if blocks is None:
            blocks = _fallback(text[start:end], line, name, last)
        for kind, bline, etype, key, fields in blocks:
            if kind == "string":
                macros[key.lower()] = _resolve(fields, macros)
            elif kind == "failed":
                yield c.unreadable(name, bline, fields)
            elif kind == "entry":
                yield finish(_entry(name, bline, key, fields, macros, keys))


# -- splitting ------------------------------------------------------------------------------------------------

def _scan(text: str, start: int, end: int, line: int):
    """Blocks of one segment read by the fast scanner, or ``None`` to let bibtexparser decide."""
    m = _BLOCK_START.match(text, start, end)
    if m is None:  # text before the first block: an implicit comment unless it hides a block start
        return None if "@" in text[start:end] else []
    if m.group(2) != "{" or "\\{" in text[start:end] or "\\}" in text[start:end]:
        return None
    etype = m.group(1).lower()
    pos = m.end()
    if etype in ("comment", "preamble"):
        return []
    if etype == "string":
        s = _STRING.match(text, pos, end)
        if s is None or "@" in text[s.end():end]:
            return None
        return [("string", line, etype, s.group(1), s.group(2))]
    h = _HEAD.match(text, pos, end)
    if h is None or not etype:
        return None
    key, pos, fields = h.group(1), h.end(), []
    if h.group(2) == ",":
        while True:
            f = _FIELD.match(text, pos, end)
            if f is None:
                close = _CLOSE.match(text, pos, end)
                if close is None:
                    return None
                pos = close.end()
                break
            fields.append((f.group(1), f.group(2)))
            pos = f.end()
            if f.group(3) == "}":
                break
    if "@" in text[pos:end]:
        return None
    return [("entry", line, etype, key, fields)]


class _Quiet:
    """Silence bibtexparser's splitter log while it reads one block: its findings become our problems."""

    def __enter__(self):
        self.log = logging.getLogger("bibtexparser.splitter")
        self.was, self.log.disabled = self.log.disabled, True

    def __exit__(self, *exc):
        self.log.disabled = self.was


def _fallback(segment: str, line: int, name: str, last: bool):
    """Blocks of one segment read by bibtexparser (no middleware: raw values, resolved here)."""
    import bibtexparser
    from bibtexparser import model
    from bibtexparser.exceptions import BlockAbortedException, ParsingException

    try:
        with _Quiet():
            library = bibtexparser.parse_string(segment, parse_stack=[])
    except ParsingException as e:  # bibtexparser's own invalid state: still a file error, not a traceback
        raise LoadError(name, line, None, f"BibTeX parser failed: {e}") from None
    out = []
    for b in library.blocks:
        bline = line + (b.start_line or 0)
        if isinstance(b, model.ParsingFailedBlock) and isinstance(b.ignore_error_block, model.Entry):
            b = b.ignore_error_block  # duplicate field or key: the entry is whole, reported below
        if isinstance(b, model.Entry):
            out.append(("entry", bline, b.entry_type.lower(), b.key, [(f.key, f.value) for f in b.fields]))
        elif isinstance(b, model.String):
            out.append(("string", bline, "string", b.key, b.value))
        elif isinstance(b, model.ParsingFailedBlock):
            err = b.error
            reason = err.abort_reason if isinstance(err, BlockAbortedException) else str(err)
            if "end of file" in reason:
                if last:
                    raise LoadError(name, bline, None, "truncated BibTeX: the block starting here is not closed "
                                    "before the end of the file (unbalanced braces or quotes)")
                reason = "block not closed before the next @-block (unbalanced braces or quotes)"
            out.append(("failed", bline, None, None, f"malformed BibTeX block: {reason.strip()}"))
    return out


# -- values ---------------------------------------------------------------------------------------------------

def _resolve(raw: str, macros: dict[str, str]) -> str:
    """The text of a raw value: enclosing braces/quotes removed, ``#`` parts joined, @string macros expanded."""
    raw = raw.strip()
    if "#" not in raw and raw[:1] == "{" and raw[-1:] == "}":
        return raw[1:-1]
    parts, depth, quoted, begin = [], 0, False, 0
    for i, ch in enumerate(raw):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == '"' and depth == 0:
            quoted = not quoted
        elif ch == "#" and depth == 0 and not quoted:
            parts.append(raw[begin:i])
            begin = i + 1
    parts.append(raw[begin:])
    out = []
    for p in parts:
        p = p.strip()
        if len(p) >= 2 and (p[0], p[-1]) in (("{", "}"), ('"', '"')):
            out.append(p[1:-1])
        else:
            out.append(macros.get(p.lower(), p))
    return "".join(out)


_ACCENT = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
           ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
           "r": "\u030a", "d": "\u0323", "b": "\u0331"}
_SYMBOL = {"ss": "ß", "o": "ø", "O": "Ø", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
           "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ"}
_ACCENT_RE = re.compile(r"\\([`'^\"~=.])\s*(?:\{\s*\\?([A-Za-z])\s*\}|\\?([A-Za-z]))"
                        r"|\\([uvHckrdb])(?:\s*\{\s*\\?([A-Za-z])\s*\}|\s+\\?([A-Za-z]))")
_SYMBOL_RE = re.compile(r"\\(ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![A-Za-z])\s?")
_ESCAPE_RE = re.compile(r"\\([&%_$#{}])")
_FORMAT_RE = re.compile(r"\\(?:textit|textbf|textrm|textsf|texttt|textsc|textnormal|emph|mbox|text|"
                        r"textup|textmd|mathrm|mathbf|mathit|url)\s*(?=\{)|\\(?:em|it|bf|sc|rm|tt|sf)\b\s*")


# escaped characters hidden from brace removal and the "$" test, then restored
_HIDE = {"{": "\ue000", "}": "\ue001", "$": "\ue002"}
_UNHIDE = str.maketrans({v: k for k, v in _HIDE.items()})
_LATEX2TEXT = []


def _latex2text(s: str) -> str:
    if not _LATEX2TEXT:
        from pylatexenc.latex2text import LatexNodes2Text
        _LATEX2TEXT.append(LatexNodes2Text())
    try:
        return _LATEX2TEXT[0].latex_to_text(s)
    except Exception:  # pylatexenc's own failure on odd input: keep the text, minus braces, rather than fail
        return s.replace("{", "").replace("}", "")


def _accent(m: re.Match) -> str:
    if m.group(1):
        return (m.group(2) or m.group(3)) + _ACCENT[m.group(1)]
    return (m.group(5) or m.group(6)) + _ACCENT[m.group(4)]


def latex(s: str) -> str:
    """Plain text of a BibTeX value: common accents and escapes decoded here, anything rarer by pylatexenc."""
    if "\\" in s or "$" in s:
        t = _FORMAT_RE.sub("", _SYMBOL_RE.sub(lambda m: _SYMBOL[m.group(1)], _ACCENT_RE.sub(_accent, s)))
        t = _ESCAPE_RE.sub(lambda m: _HIDE.get(m.group(1), m.group(1)), t)
        if "\\" in t or "$" in t:
            t = _latex2text(s)
        else:
            t = unicodedata.normalize("NFC", t.replace("{", "").replace("}", "").translate(_UNHIDE))
    else:
        t = s.replace("{", "").replace("}", "")
    if "--" in t:
        t = t.replace("---", "\u2014").replace("--", "\u2013")
    return " ".join(t.replace("~", " ").split())


def _plain(s: str) -> str:
    """A URL, DOI or id: braces dropped, ``\\_``-style escapes undone, no other LaTeX meaning."""
    return _ESCAPE_RE.sub(r"\1", s.replace("{", "").replace("}", "")).strip()


def _names(s: str) -> list[str]:
    """Authors split on top-level `` and ``, each ``Family, Given`` inverted, LaTeX removed."""
    if "{" in s:
        cuts, begin = [], 0
        for m in _AND.finditer(s):
            if s.count("{", 0, m.start()) == s.count("}", 0, m.start()):
                cuts.append(s[begin:m.start()])
                begin = m.end()
        cuts.append(s[begin:])
    else:
        cuts = _AND.split(s)
    if not _SPECIAL.search(s):  # the common case: no braces, LaTeX or dashes
        names = (c.invert_name(" ".join(n.split())) for n in cuts)
        return [n for n in names if n and n.lower() != "others"]
    out = []
    for raw in cuts:
        if "{" in raw:  # commas inside braces belong to the name
            depth, parts, begin = 0, [], 0
            for i, ch in enumerate(raw):
                depth += (ch == "{") - (ch == "}")
                if ch == "," and depth == 0:
                    parts.append(raw[begin:i])
                    begin = i + 1
            parts.append(raw[begin:])
            name = c.invert_name(",".join(latex(p).replace(",", "\x00") for p in parts)).replace("\x00", ",")
        else:
            name = c.invert_name(latex(raw))
        name = c.squash(name)
        if name and name.lower() != "others":
            out.append(name)
    return out


def _entry(name: str, line: int, key: str, raw_fields, macros, keys: dict[str, int]) -> Entry:
    e = Entry(file=name, line=line)
    p = e.problems
    if key:
        first = keys.setdefault(key, line)
        if first != line:
            p.append(("key", f"duplicate citation key {key!r} (first used at line {first})"))
    else:
        p.append(("key", "entry has no citation key"))
    f: dict[str, str] = {}
    for k, raw in raw_fields:
        k = k.lower()
        if k not in _USED:
            continue
        if k in f:
            if k in _FIELD_ATTR:
                p.append((_FIELD_ATTR[k], f"field {k!r} given twice; the first value is kept"))
            continue
        f[k] = _resolve(raw, macros)
    if "title" in f:
        e.title = latex(f["title"]) or None
    if "author" in f:
        e.authors = _names(f["author"])
    if "year" in f:
        e.year = c.year(latex(f["year"]), p)
    elif "date" in f:
        e.year, e.month = c.date(_plain(f["date"]), p)
    if "month" in f:
        e.month = c.month(latex(f["month"]), p)
    venue = f.get("booktitle") or f.get("journal") or f.get("journaltitle")
    if venue:
        e.venue = latex(venue) or None
    if f.get("doi"):
        e.doi = c.doi(_plain(f["doi"]), p)
    prefix = (f.get("archiveprefix") or f.get("eprinttype") or "").strip("{} ").lower()
    if f.get("eprint") and prefix in ("", "arxiv"):
        e.arxiv_id = c.arxiv_id(_plain(f["eprint"]), p if prefix else [])
    for k in ("arxiv", "arxivid", "arxiv_id"):
        if f.get(k) and e.arxiv_id is None:
            e.arxiv_id = c.arxiv_id(_plain(f[k]), p)
    if f.get("url"):
        e.url = _plain(f["url"])
        c.link_ids(e, e.url, p)
    if e.arxiv_id is None and e.venue:
        m = _ARXIV_IN_TEXT.search(e.venue)
        if m:
            e.arxiv_id = c.arxiv_id(m.group(1), p)
    if f.get("abstract"):
        e.abstract = latex(f["abstract"]) or None
    if f.get("keywords"):
        e.keywords = c.split_list(latex(f["keywords"]))
    return e
