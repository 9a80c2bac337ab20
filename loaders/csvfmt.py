"""CSV parser: a header row, then one paper per row; columns as documented in ``_fields`` (case-insensitive).

Each entry's line is the physical line where its row starts (a quoted cell may span lines). A row with more
cells than the header (usually an unquoted comma: every later cell is shifted) or with broken quoting is an
unreadable entry (field ``entry``) and the next rows still load; a row with fewer cells is read with the missing
cells empty. A header without a ``title`` column, or a quote left open at the end of the file, is a malformed
file -> LoadError.
"""

from __future__ import annotations

import csv
import io
from typing import Iterator

from mfmkg.errors import LoadError

from . import _common as c
from . import _fields
from .record import Entry

LABEL = "CSV"


def parse(source: c.Source, name: str | None = None) -> Iterator[Entry]:
    """Entries of a CSV file, path or stream."""
    name = c.source_name(source, name)
    yield from parse_text(c.read_text(source, name, LABEL), name)


def parse_text(text: str, name: str) -> Iterator[Entry]:
    finish = c.Finisher()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # leading blank lines
        if header is None:
            return
        header_line = reader.line_num
        columns = [h.strip().lower().lstrip("\ufeff") for h in header]
        known = [h for h in columns if h in _fields.ALIASES]
        if "title" not in known:
            raise LoadError(name, header_line, None,
                            f"CSV header has no 'title' column (columns: {', '.join(columns)})")
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                if "end of data" in str(err):  # only at the end of the file
                    raise LoadError(name, start, None, f"malformed CSV: quoted cell opened here is never "
                                    f"closed ({err})") from None
                yield c.unreadable(name, start, f"malformed CSV row: {err}")
                start = reader.line_num + 1
                continue
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(columns) and any(v.strip() for v in row[len(columns):]):
                yield c.unreadable(name, line, f"row has {len(row)} cells but the header has {len(columns)} "
                                   "(an unquoted comma?); row skipped")
                continue
            yield finish(_fields.entry(dict(zip(columns, row)), name, line))
    except csv.Error as err:
        raise LoadError(name, reader.line_num or 1, None, f"malformed CSV: {err}") from None
