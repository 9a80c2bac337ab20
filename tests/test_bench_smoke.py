"""Smoke runs of ``bench/scale.py`` and ``bench/load_throughput.py`` at a few hundred papers: the tables have the
expected rows and columns and the benches' own consistency checks pass. No timing is asserted (the full runs are
``python -m bench.scale`` and ``python -m bench.load_throughput``, docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, oxigraph_executable

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import scale  # noqa: E402

SIZES = (100, 200)


def run_scale(backend: str, tmp_path) -> tuple[list[str], list[dict]]:
    out_json = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, "-m", "bench.scale", "--backend", backend, "--sizes",
                           ",".join(map(str, SIZES)), "--reps", "2", "--workdir", str(tmp_path / "work"),
                           "--json", str(out_json)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    return proc.stdout.splitlines(), json.loads(out_json.read_text())


def table_lines(lines: list[str]) -> tuple[str, list[list[str]]]:
    start = next(i for i, line in enumerate(lines) if line.startswith("scale: ")) + 1
    header, rows = lines[start], []
    for line in lines[start + 1:]:
        cells = line.split()
        if not cells or cells[0] not in ("remote", "embedded"):
            break
        rows.append(cells)
    return header, rows


@pytest.mark.parametrize("backend", ["embedded", "remote"])
def test_scale_table_has_a_row_per_size_and_a_growth_column_per_metric(backend, tmp_path):
    if backend == "remote" and oxigraph_executable() is None:
        pytest.skip("the oxigraph server CLI is not installed (pip install -e '.[test]')")
    lines, steps = run_scale(backend, tmp_path)
    header, rows = table_lines(lines)

    for title, _key, _fmt, _grows in scale.COLUMNS:
        assert title in header
    n_cells = sum(2 if grows else 1 for *_, grows in scale.COLUMNS)
    assert header.split().count(scale.GROWTH) == sum(1 for *_, grows in scale.COLUMNS if grows)
    assert [len(r) for r in rows] == [n_cells] * len(SIZES)
    assert [r[0] for r in rows] == [backend] * len(SIZES)
    assert [int(r[1]) for r in rows] == list(SIZES)
    assert [r[2] for r in rows] == ["1.00", f"{SIZES[1] / SIZES[0]:.2f}"]  # papers' growth column
    # the smallest size is every growth column's base ("-": no such figure, the server's memory when embedded)
    assert all(c in ("1.00", "-") for c, (_, g) in zip(rows[0][1:], _growth_flags()) if g)
    server_col = _column_index("server MiB")
    assert (rows[0][server_col] == "-") == (backend == "embedded")

    assert [s["papers"] for s in steps] == list(SIZES)
    for s in steps:
        assert s["status"] == "loaded" and s["entries"] == s["papers"] and s["errors"] == 0
        assert s["triples"] > s["ontology_triples"] + 10 * s["papers"]  # about 15 triples per paper
        assert s["same_rows"] and s["threats_with_evidence"] > 0
        assert s["asserted"] > 0 and s["inferred"] > 0
    assert any(line.startswith(f"{backend} 200: ") and line.endswith("mfmkg rows = base rows: yes")
               for line in lines)


def _growth_flags() -> list[tuple[str, bool]]:
    """(cell kind, is a growth cell) for every cell after the backend column."""
    flags = []
    for title, _key, _fmt, grows in scale.COLUMNS[1:]:
        flags.append((title, False))
        if grows:
            flags.append((scale.GROWTH, True))
    return flags


def _column_index(title: str) -> int:
    return 1 + [t for t, _ in _growth_flags()].index(title)


def test_load_throughput_table_has_every_phase_and_the_phases_agree(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.load_throughput", "--entries", "200", "--out",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    # exit 1: a target missed (200 entries say nothing about speed); 2 would be the phases disagreeing
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.split()[:1] == ["format"]).split()
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["bibtex"], ["jsonl"])}
    for title in ("ratio", "classify", "dry", "store", "triples", "status", "feed"):
        assert title in header
    assert sorted(rows) == ["bibtex", "jsonl"]
    cell = {fmt: dict(zip([h for h in header if h != "MiB"], r)) for fmt, r in rows.items()}
    # the same generated papers in both formats: the same entries and triples, all loaded
    assert {c["entries"] for c in cell.values()} == {"200"}
    assert cell["bibtex"]["triples"] == cell["jsonl"]["triples"] and int(cell["jsonl"]["triples"]) > 10 * 200
    assert {c["status"] for c in cell.values()} == {"loaded"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench-200.bib", "bench-200.jsonl"]
