"""What a load did: per source counts, bad entries as ``file:line: field: reason``, conflicts, unknown tags."""

from __future__ import annotations

from dataclasses import dataclass, field

#: How many unknown tags, notices and conflicts the text report lists before "... and N more".
TEXT_LIMIT = 20


@dataclass
class Problem:
    path: str
    line: int | None
    field: str | None
    reason: str
    file_level: bool = False   # the whole file could not be read (malformed, wrong encoding, unknown format)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"

    def to_dict(self) -> dict:
        return {"file": self.path, "line": self.line, "field": self.field, "reason": self.reason,
                "fileLevel": self.file_level, "message": str(self)}


@dataclass
class Conflict:
    iri: str
    field: str            # title | year
    value: str            # what this entry says
    other: str            # what the other record says
    where: str            # file:line of this entry
    other_where: str      # file:line of the earlier entry, or the graph/source that holds the other value

    def __str__(self) -> str:
        return (f"{self.where}: {self.field}: {self.value!r} conflicts with {self.other!r} ({self.other_where}) "
                f"for <{self.iri}>")

    def to_dict(self) -> dict:
        return {"iri": self.iri, "field": self.field, "value": self.value, "other": self.other,
                "where": self.where, "otherWhere": self.other_where, "message": str(self)}


@dataclass
class FileReport:
    path: str
    format: str | None = None
    entries: int = 0          # records read (valid and invalid)
    invalid: int = 0


@dataclass
class SourceReport:
    name: str
    graph: str
    status: str = "pending"   # loaded | unchanged | failed | dry-run
    files: list[FileReport] = field(default_factory=list)
    entries: int = 0          # valid entries (duplicates included)
    publications: int = 0     # distinct publications in the source after this load
    added: int = 0            # publications new to the store
    merged: int = 0           # publications the store already had from another source (or the ontology)
    unchanged: int = 0        # publications this source already had, with the same title and date
    updated: int = 0          # publications this source already had, with another title or date
    removed: int = 0          # publications this source had before and no longer has
    duplicates: int = 0       # entries merged into an earlier entry of the same source
    invalid: int = 0          # bad entries (skipped with --skip-invalid; otherwise nothing was stored)
    asserted: int = 0         # links (mfm:about, mfm:paperKind) by kind
    inferred: int = 0
    triples: int = 0          # triples in the source graph after the load (written or would be)
    errors: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unknown_tags: dict[tuple[str, str], list] = field(default_factory=dict)  # (field, tag) -> [count, where]
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return self.invalid

    def note_unknown(self, fld: str, tag: str, where: str) -> None:
        hit = self.unknown_tags.get((fld, tag))
        if hit is None:
            self.unknown_tags[(fld, tag)] = [1, where]
        else:
            hit[0] += 1

    def to_dict(self) -> dict:
        return {
            "source": self.name, "graph": self.graph, "status": self.status,
            "files": [vars(f) for f in self.files],
            **{k: getattr(self, k) for k in ("entries", "publications", "added", "merged", "unchanged", "updated",
                                             "removed", "duplicates", "skipped", "asserted", "inferred",
                                             "triples")},
            "errors": [e.to_dict() for e in self.errors],
            "notices": [n.to_dict() for n in self.notices],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "unknownTags": [{"field": f, "tag": t, "count": n, "firstAt": w}
                            for (f, t), (n, w) in sorted(self.unknown_tags.items(), key=lambda kv: -kv[1][0])],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class LoadReport:
    sources: list[SourceReport] = field(default_factory=list)
    dry_run: bool = False
    skip_invalid: bool = False

    @property
    def ok(self) -> bool:
        """False when a source failed (nothing stored) or a file could not be read at all."""
        return all(s.status != "failed" for s in self.sources) and not any(
            e.file_level for s in self.sources for e in s.errors)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources)

    def summary_line(self) -> str:
        t = self.total
        unknown = sum(len(s.unknown_tags) for s in self.sources)
        verb = "would load" if self.dry_run else "loaded"
        failed = [s.name for s in self.sources if s.status == "failed"]
        head = f"{verb} {t('entries')} entries from {len(self.sources)} source(s)"
        if failed:
            head += f" ({len(failed)} failed, nothing stored from: {', '.join(failed)})"
        return (f"{head}: {t('added')} added, {t('merged')} merged, {t('unchanged')} unchanged, "
                f"{t('updated')} updated, {t('duplicates')} duplicates, {t('skipped')} skipped; "
                f"links {t('asserted')} asserted, {t('inferred')} inferred; {unknown} unknown tags; "
                f"{sum(len(s.conflicts) for s in self.sources)} conflicts")

    def to_dict(self) -> dict:
        t = self.total
        return {"ok": self.ok, "dryRun": self.dry_run, "skipInvalid": self.skip_invalid,
                "summary": {k: t(k) for k in ("entries", "added", "merged", "unchanged", "updated", "removed",
                                              "duplicates", "skipped", "asserted", "inferred")}
                | {"unknownTags": sum(len(s.unknown_tags) for s in self.sources),
                   "conflicts": sum(len(s.conflicts) for s in self.sources)},
                "sources": [s.to_dict() for s in self.sources]}

    def render_problems(self, limit: int = TEXT_LIMIT) -> list[str]:
        """Lines for stderr: every bad entry, then conflicts, notices and unknown tags (capped)."""
        out: list[str] = []
        for s in self.sources:
            out += [f"error: {e}" for e in s.errors]
            out += _capped([f"conflict: {c}" for c in s.conflicts], limit)
            out += _capped([f"note: {n}" for n in s.notices], limit)
            tags = sorted(s.unknown_tags.items(), key=lambda kv: (-kv[1][0], kv[0]))
            out += _capped([f"unknown {f}: {t!r} ({n}x, first at {w})" for (f, t), (n, w) in tags], limit)
        return out

    def render_summary(self) -> list[str]:
        lines = [self.summary_line()]
        for s in self.sources:
            lines.append(f"  {s.name} [{s.status}]: {s.entries} entries, {s.publications} publications "
                         f"({s.added} added, {s.merged} merged, {s.unchanged} unchanged, {s.updated} updated, "
                         f"{s.removed} removed, {s.duplicates} duplicates, {s.skipped} skipped), links "
                         f"{s.asserted} asserted / {s.inferred} inferred, {len(s.unknown_tags)} unknown tags, "
                         f"{len(s.conflicts)} conflicts, {s.triples} triples, {s.seconds:.2f}s")
        return lines


def _capped(lines: list[str], limit: int) -> list[str]:
    return lines if len(lines) <= limit else lines[:limit] + [f"... and {len(lines) - limit} more"]
