"""Helpers every format parser shares: reading and decoding input, and normalising identifiers, dates and names.

Conventions all parsers follow (the pipeline relies on them):
- a problem is ``(field, reason)`` where ``field`` is an ``Entry`` attribute name; or ``"key"`` (BibTeX citation
  key: missing or duplicate); or ``"entry"`` when the record as a whole could not be read (then the Entry
  carries only ``file``, ``line`` and that one problem, and should be reported, not loaded);
- problems are advisory otherwise: the Entry holds every field that could be read (a bad DOI leaves ``doi``
  None, a second occurrence of an arXiv id in the same file keeps its ``arxiv_id`` and says where the first is);
- a malformed *file* (not UTF-8, binary, truncated, not well-formed) raises ``LoadError`` instead.
"""

from __future__ import annotations

import os
import re
from typing import IO, Union

from mfmkg.errors import LoadError

from .record import Entry

Source = Union[str, os.PathLike, bytes, bytearray, IO]

# A record that could not be read at all: the only problem such an Entry carries.
UNREADABLE = "entry"


# -- reading ------------------------------------------------------------------------------------------------

def source_name(source: Source, name: str | None = None) -> str:
    """The name entries and errors use: ``name`` if given, else the path, the stream's name, or ``<stdin>``."""
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    stream_name = getattr(source, "name", None)
    return stream_name if isinstance(stream_name, str) else "<stdin>"


def read_bytes(source: Source, name: str) -> bytes | str:
    """The raw content of a path, bytes or a (binary or text) stream."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise LoadError(name, None, None, "no such file") from None
        except IsADirectoryError:
            raise LoadError(name, None, None, "is a directory, not a file") from None
        except OSError as e:
            raise LoadError(name, None, None, f"cannot read: {e.strerror or e}") from None
    return source.read()


def decode(data: bytes | str, name: str, label: str) -> str:
    """UTF-8 text with newlines normalised to ``\\n``; LoadError for binary or non-UTF-8 input."""
    if isinstance(data, str):
        text = data
    else:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise LoadError(name, 1, None, f"UTF-16 text, not UTF-8 {label}: save it as UTF-8")
        nul = data.find(b"\x00")
        if nul >= 0:
            line = data.count(b"\n", 0, nul) + 1
            raise LoadError(name, line, None, f"binary file, not {label} (NUL byte at byte {nul})")
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        try:
            text = data[bom:].decode("utf-8")
        except UnicodeDecodeError as e:
            pos = e.start + bom
            line = data.count(b"\n", 0, pos) + 1
            raise LoadError(name, line, None, f"not UTF-8 text at byte {pos}: save the file as UTF-8") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_text(source: Source, name: str, label: str) -> str:
    return decode(read_bytes(source, name), name, label)


# -- text -----------------------------------------------------------------------------------------------------

def squash(s: str | None) -> str | None:
    """Whitespace collapsed to single spaces and stripped; ``None`` for empty."""
    if s is None:
        return None
    s = " ".join(s.split())
    return s or None


def split_list(value, seps: str = ",;") -> list[str]:
    """Keywords/tags from a string separated by any of ``seps``, or from a list; stripped, empty and repeats dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = re.split("[" + re.escape(seps) + "]", value) if seps else [value]
    elif isinstance(value, (list, tuple)):
        parts = [p for v in value for p in split_list(v, seps)] if seps else [str(v) for v in value]
    else:
        parts = [str(value)]
    out: list[str] = []
    for p in parts:
        p = squash(str(p))
        if p and p not in out:
            out.append(p)
    return out


# -- identifiers ----------------------------------------------------------------------------------------------

_ARXIV_NEW = re.compile(r"(\d{2})(\d{2})\.(\d{4,5})(?:v\d+)?")
_ARXIV_OLD = re.compile(r"([a-z][a-z\-]*(?:\.[A-Z]{2})?)/(\d{7})(?:v\d+)?")
_ARXIV_URL = re.compile(r"arxiv\.org/+(?:abs|pdf|html|format)/+([^?#\s]+)", re.I)
_DOI = re.compile(r"10\.\d{4,9}/\S+")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.I)
_DOI_IN_URL = re.compile(r"(?:doi\.org|/doi(?:/(?:abs|full|pdf|epdf))?)/(10\.\d{4,9}/[^?#\s]+)", re.I)


def arxiv_id(value: str, problems: list, field: str = "arxiv_id") -> str | None:
    """The bare arXiv id (version stripped) of an id, ``arXiv:`` reference or arxiv.org URL; else a problem."""
    raw = value.strip()
    s = raw
    m = _ARXIV_URL.search(s)
    if m:
        s = m.group(1)
    s = re.sub(r"^arxiv\s*:\s*", "", s, flags=re.I).removesuffix(".pdf").strip("/ ")
    m = _ARXIV_NEW.fullmatch(s)
    if m:
        yy, mm, num = m.groups()
        if 1 <= int(mm) <= 12 and (len(num) == 5) == ((int(yy), int(mm)) >= (15, 1)):
            return f"{yy}{mm}.{num}"
    else:
        m = _ARXIV_OLD.fullmatch(s)
        if m:
            return f"{m.group(1)}/{m.group(2)}"
    problems.append((field, f"not an arXiv id: {raw!r}"))
    return None


def arxiv_from_url(url: str | None, problems: list) -> str | None:
    """The arXiv id of an arxiv.org link (abs, pdf, html), ``None`` for other links."""
    if url and "arxiv.org/" in url.lower():
        return arxiv_id(url, problems, "url") if _ARXIV_URL.search(url) else None
    return None


def doi(value: str, problems: list) -> str | None:
    """Bare lower-case DOI without resolver prefix; else a problem."""
    raw = value.strip()
    s = _DOI_PREFIX.sub("", raw).strip()
    if _DOI.fullmatch(s):
        return s.lower()
    problems.append(("doi", f"not a DOI: {raw!r}"))
    return None


def doi_from_url(url: str | None) -> str | None:
    """The DOI inside a doi.org link or a publisher ``/doi/10.x/...`` link, else ``None``."""
    if url:
        m = _DOI_IN_URL.search(url)
        if m:
            return m.group(1).rstrip(".").lower()
    return None


# -- dates ----------------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, ms in enumerate(
    ["jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"], 1) for m in ms.split()}
_DATE = re.compile(r"((?:19|20)\d{2})(?:[-/.](\d{1,2}))?(?:[-/.](\d{1,2}))?(?=$|[T\s])")
_YEAR_MIN, _YEAR_MAX = 1900, 2100


def year(value, problems: list) -> int | None:
    """A year from an int or a string holding one four-digit year; else a problem."""
    if value is None or value == "":
        return None
    s = str(value).strip()
    m = re.fullmatch(r"\{?\s*(\d{4})[a-z]?\s*\}?", s)
    if m and _YEAR_MIN <= int(m.group(1)) <= _YEAR_MAX:
        return int(m.group(1))
    problems.append(("year", f"unparseable year: {s!r}"))
    return None


def month(value, problems: list) -> int | None:
    """A month 1-12 from a number or an English (abbreviated) month name; else a problem."""
    if value is None or value == "":
        return None
    s = str(value).strip().lower().rstrip(".")
    if s.isdigit() and 1 <= int(s) <= 12:
        return int(s)
    if s in _MONTHS:
        return _MONTHS[s]
    problems.append(("month", f"unparseable month: {value!r}"))
    return None


def date(value, problems: list) -> tuple[int | None, int | None]:
    """(year, month) of ``2024``, ``2024-05``, ``2024/05``, ``2024.05.17``, ISO datetimes, or ``May 2024``."""
    if value is None or value == "":
        return None, None
    s = str(value).strip()
    m = _DATE.match(s)
    if m:
        y, mo = int(m.group(1)), m.group(2)
        if mo is None:
            return y, None
        if 1 <= int(mo) <= 12:
            return y, int(mo)
        problems.append(("month", f"unparseable month in date {s!r}"))
        return y, None
    m = re.fullmatch(r"([A-Za-z]+)\.?,?\s+((?:19|20)\d{2})", s)
    if m and m.group(1).lower() in _MONTHS:
        return int(m.group(2)), _MONTHS[m.group(1).lower()]
    problems.append(("year", f"unparseable date: {s!r}"))
    return None, None


# -- people ---------------------------------------------------------------------------------------------------

_DROP_NAMES = {"others", "et al.", "et al", "and others"}


def invert_name(name: str) -> str:
    """``Family, Given`` (and ``Family, Jr., Given``) to ``Given Family [Jr.]``; other forms unchanged."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) == 2 and all(parts):
        return f"{parts[1]} {parts[0]}"
    if len(parts) == 3 and all(parts):
        return f"{parts[2]} {parts[0]} {parts[1]}"
    return name.strip()


def _person(v) -> str | None:
    """A name from a string or a CSL-style object (``literal``, or ``given`` + ``family``; or ``name``)."""
    if isinstance(v, dict):
        if v.get("literal") or v.get("name"):
            return squash(str(v.get("literal") or v.get("name")))
        parts = (v.get("given"), v.get("non-dropping-particle"), v.get("family"), v.get("suffix"))
        return squash(" ".join(str(x) for x in parts if isinstance(x, (str, int))))
    return squash(str(v)) if isinstance(v, (str, int, float)) else None


def authors(value) -> list[str]:
    """Names from a list, or from a string separated by ``;``, `` and `` or commas (``Family, Given`` is inverted)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        names = [_person(v) for v in value]
    else:
        s = squash(str(value)) or ""
        if ";" in s:
            names = [invert_name(p) for p in s.split(";")]
        elif re.search(r"\s+and\s+", s, re.I):
            names = []
            for part in re.split(r",?\s+and\s+", s, flags=re.I):
                pieces = [p.strip() for p in part.split(",")]
                # "A B, C D and E F": a plain list of full names; "Qi, Xiangyu and ...": Family, Given
                if len(pieces) > 1 and all(" " in p for p in pieces if p):
                    names.extend(pieces)
                else:
                    names.append(invert_name(part))
        else:
            pieces = [p.strip() for p in s.split(",")]
            names = [invert_name(s)] if len(pieces) == 2 and " " not in pieces[0] else pieces
    return [n for n in (squash(n) for n in names) if n and n.lower() not in _DROP_NAMES]


# -- finishing ------------------------------------------------------------------------------------------------

class Finisher:
    """Per-file last step: missing-title check, de-duplicated lists, the arXiv id of an arXiv DOI
    (``10.48550/arXiv.NNNN.NNNNN``), and repeated arXiv ids / DOIs within the file."""

    def __init__(self) -> None:
        self._arxiv: dict[str, int] = {}
        self._doi: dict[str, int] = {}

    def __call__(self, e: Entry) -> Entry:
        if not e.title:
            e.title = None
            e.problems.append(("title", "missing title"))
        for attr in ("tags", "keywords", "categories"):
            values = getattr(e, attr)
            if len(values) > 1:
                setattr(e, attr, list(dict.fromkeys(values)))
        if e.arxiv_id is None and e.doi and e.doi.startswith("10.48550/arxiv."):  # arXiv's own DOI
            e.arxiv_id = arxiv_id(e.doi[len("10.48550/arxiv."):], e.problems)
        if e.arxiv_id:
            first = self._arxiv.setdefault(e.arxiv_id, e.line)
            if first != e.line:
                e.problems.append(("arxiv_id", f"duplicate: arXiv {e.arxiv_id} also at line {first}"))
        if e.doi:
            first = self._doi.setdefault(e.doi, e.line)
            if first != e.line:
                e.problems.append(("doi", f"duplicate: DOI {e.doi} also at line {first}"))
        return e


def unreadable(name: str, line: int, reason: str) -> Entry:
    """The Entry for a record that could not be read at all."""
    return Entry(file=name, line=line, problems=[(UNREADABLE, reason)])


def link_ids(e: Entry, url: str | None, problems: list) -> None:
    """Fill ``arxiv_id``/``doi`` from a link when the record did not give them; report disagreements."""
    if not url:
        return
    a = arxiv_from_url(url, problems)
    if a:
        if e.arxiv_id is None:
            e.arxiv_id = a
        elif a != e.arxiv_id:
            problems.append(("arxiv_id", f"arXiv id {e.arxiv_id} disagrees with link {url}"))
    d = doi_from_url(url)
    if d:
        if e.doi is None:
            e.doi = d
        elif d != e.doi:
            problems.append(("doi", f"DOI {e.doi} disagrees with link {url}"))
