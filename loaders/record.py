"""The format-neutral record every format parser yields, and the pipeline consumes.

Parsers do no classification and no identity resolution: they report what the source says, where it says it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Entry:
    """One paper as read from one place in one input file."""

    file: str                     # path as given, or "<stdin>"
    line: int                     # 1-based line where the entry starts
    title: str | None = None
    authors: list[str] = field(default_factory=list)   # in source order, "Given Family" or as written
    year: int | None = None
    month: int | None = None
    venue: str | None = None
    doi: str | None = None        # bare DOI, lower-case, no resolver prefix
    arxiv_id: str | None = None   # NNNN.NNNNN (or old-style archive/NNNNNNN), version suffix stripped
    url: str | None = None
    abstract: str | None = None
    keywords: list[str] = field(default_factory=list)  # author/source keywords (free text)
    tags: list[str] = field(default_factory=list)      # explicit labels (tag column, badge, "Notes"): asserted
    categories: list[str] = field(default_factory=list)  # the list's own category (e.g. its heading): asserted
    problems: list[tuple[str, str]] = field(default_factory=list)  # (field, reason) found while parsing

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"
