"""JSON and JSONL parsers; fields as documented in ``_fields`` (CSV's names plus awesome-mllm-safety's
Date / Notes / Title / Link / Author).

JSON shapes: a list of objects; or an object of sections ``{"Section": [objects], ...}`` (awesome-mllm-safety's
data.json), where each section name becomes a category; or one object. Each entry's line is the line of its
object's opening brace, found by decoding the top two levels element by element (``json.JSONDecoder.raw_decode``)
so positions are exact. Broken JSON -> LoadError with the decoder's line and column.

JSONL: one object per line; blank lines skipped. A line that is not a JSON object is reported as an unreadable
entry at that line (field ``entry``) and the other lines still load.

A number longer than Python's integer conversion limit (4300 digits; ``json`` raises a plain ValueError for it)
is a LoadError naming the file, the line of its record and the field holding it.
"""

from __future__ import annotations

import json
import re
from typing import Iterator

from mfmkg.errors import LoadError

from . import _common as c
from . import _fields
from .record import Entry

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _BigNumber(str):
    """A JSON integer too long for ``int()`` (Python's int-string conversion limit), kept as its digits."""


def _int_or_big(digits: str):
    try:
        return int(digits)
    except ValueError:
        return _BigNumber(digits)


#: Used only to find where a number too long to read is: it never fails on one.
_TOLERANT = json.JSONDecoder(parse_int=_int_or_big)


def _big_number(obj, path: str = "") -> tuple[str, str] | None:
    """(path, digits) of the first number in ``obj`` too long to read, else None."""
    if isinstance(obj, _BigNumber):
        return path, obj
    if isinstance(obj, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for sub, v in items:
        found = _big_number(v, sub)
        if found:
            return found
    return None


def _too_long(name: str, line: int, obj) -> LoadError:
    found = _big_number(obj)
    path, digits = found if found else ("", "")
    field = re.split(r"[.\[]", path, maxsplit=1)[0] or None
    where = f" (at {path})" if path and path != field else ""
    size = f"{len(digits)} digits" if digits else "too many digits"
    return LoadError(name, line, field, f"a number of {size} is too long to read{where}")


class _Shape(Exception):
    """The document is valid JSON but not a shape this format reads."""


def parse(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of a JSON file, path or stream."""
    name = c.source_name(source, name)
    yield from parse_text(c.read_text(source, name, "JSON"), name)


def parse_text(text: str, name: str) -> Iterator[Entry]:
    finish = c.Finisher()
    for line, obj, section in objects(text, name, "JSON"):
        if isinstance(obj, dict):
            yield finish(_fields.entry(obj, name, line, [section] if section else None))
        else:
            yield c.unreadable(name, line, f"expected a JSON object, found {_kind(obj)}")


def parse_jsonl(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of a JSONL file, path or stream (one JSON object per line)."""
    name = c.source_name(source, name)
    yield from parse_jsonl_text(c.read_text(source, name, "JSONL"), name)


def parse_jsonl_text(text: str, name: str) -> Iterator[Entry]:
    finish = c.Finisher()
    loads = json.loads
    for n, raw in enumerate(text.split("\n"), 1):
        if not raw or raw.isspace():
            continue
        try:
            obj = loads(raw)
        except json.JSONDecodeError as e:
            yield c.unreadable(name, n, f"not valid JSON: {e.msg} (column {e.colno})")
            continue
        except RecursionError:
            yield c.unreadable(name, n, "JSON nested too deeply to read")
            continue
        except ValueError:  # a number past Python's int conversion limit
            raise _too_long(name, n, _TOLERANT.decode(raw)) from None
        if isinstance(obj, dict):
            yield finish(_fields.entry(obj, name, n))
        else:
            yield c.unreadable(name, n, f"expected a JSON object, found {_kind(obj)}")


def _kind(obj) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(obj), "a number")


def objects(text: str, name: str, label: str) -> Iterator[tuple[int, object, str | None]]:
    """``(line, element, section)`` for each element of a top-level array or of each array-valued member of a
    top-level object (``section`` is the member name); a top-level object without array members is one element.
    """
    try:
        found = list(_scan(text))
    except RecursionError:
        raise LoadError(name, 1, None, f"{label} nested too deeply to read") from None
    except (json.JSONDecodeError, _Shape, IndexError, ValueError) as scan_error:
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise LoadError(name, e.lineno, None, f"broken {label}: {e.msg} (column {e.colno})") from None
        except RecursionError:
            raise LoadError(name, 1, None, f"{label} nested too deeply to read") from None
        except ValueError:  # a number past Python's int conversion limit: find its record and field
            raise _big_number_error(text, name) from None
        raise LoadError(name, 1, None, f"not a {label} list of entries: {scan_error}") from None
    line, last = 1, 0
    for pos, obj, section in found:
        line += text.count("\n", last, pos)
        last = pos
        yield line, obj, section


def _big_number_error(text: str, name: str) -> LoadError:
    """The LoadError for a document that holds a number too long to read: the line of the record holding it."""
    try:
        for pos, obj, _section in _scan(text, _TOLERANT):
            if _big_number(obj):
                return _too_long(name, text.count("\n", 0, pos) + 1, obj)
    except (json.JSONDecodeError, _Shape, IndexError, ValueError, RecursionError):
        pass
    return _too_long(name, 1, _TOLERANT.decode(text))


def _scan(text: str, decoder: json.JSONDecoder = _DECODER):
    i = _WS.match(text, 0).end()
    if i == len(text):
        return
    if text[i] == "[":
        end = yield from _array(text, i, None, decoder)
    elif text[i] == "{":
        whole, end = decoder.raw_decode(text, i)
        if any(str(k).strip().lower() == "title" for k in whole):  # one record, not sections
            yield i, whole, None
        else:
            end = yield from _sections(text, i, decoder)
    else:
        raise _Shape("expected an array or an object at the top level")
    if _WS.match(text, end).end() != len(text):
        raise _Shape("extra data after the top-level value")


def _sections(text: str, i: int, decoder: json.JSONDecoder):
    """Yield the elements of each array-valued member of the object opening at ``i``; return the end index."""
    end = None
    i = _WS.match(text, i + 1).end()
    if text[i] == "}":
        end = i + 1
    while end is None:
        key, j = decoder.raw_decode(text, i)
        if not isinstance(key, str):
            raise _Shape("object member name expected")
        i = _WS.match(text, j).end()
        if text[i] != ":":
            raise _Shape("':' expected")
        i = _WS.match(text, i + 1).end()
        if text[i] == "[":
            i = yield from _array(text, i, key, decoder)
        else:
            _, i = decoder.raw_decode(text, i)
        i = _WS.match(text, i).end()
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()
        elif text[i] == "}":
            end = i + 1
        else:
            raise _Shape("',' or '}' expected")
    return end


def _array(text: str, i: int, section: str | None, decoder: json.JSONDecoder = _DECODER):
    """Yield ``(pos, element, section)`` for the array opening at ``i``; return the index after it."""
    i = _WS.match(text, i + 1).end()
    if text[i] == "]":
        return i + 1
    while True:
        obj, j = decoder.raw_decode(text, i)
        yield i, obj, section
        i = _WS.match(text, j).end()
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()
        elif text[i] == "]":
            return i + 1
        else:
            raise _Shape("',' or ']' expected")
