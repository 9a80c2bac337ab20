"""``mfmkg check`` (parse, OWL + HermiT, SHACL, quality queries) and ``mfmkg fmt`` (canonical Turtle)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import Graph
from rdflib.compare import isomorphic
from rdflib.namespace import OWL

from mfmkg.checks import check_paths, run_checks
from mfmkg.cli import main
from mfmkg.fmt import format_files
from mfmkg.onto import shipped_dir
from mfmkg.resources import checks_dir

FIXTURE = Path(__file__).parent / "data" / "check" / "ontology"
SHIPPED = ("core.ttl", "taxonomy.ttl", "defenses.ttl", "attacks.ttl", "publications.ttl", "shapes.ttl")
MFM = "https://w3id.org/mfmkg/ont#"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="HermiT needs java")

EX_HEADER = """\
@prefix mfm: <https://w3id.org/mfmkg/ont#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ex: <https://example.org/test#> .
"""


# -- helpers -------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch):
    """The user's own extensions or config file must not change what these tests check."""
    for name in ("MFMKG_EXTENSIONS_DIR", "MFMKG_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def copy_dir(src: Path, dst: Path) -> Path:
    """A formatted copy of an ontology directory, so that the block-editing helpers below can rely on layout."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    format_files(sorted(dst.glob("*.ttl")))
    return dst


@pytest.fixture(scope="module")
def formatted_shipped(tmp_path_factory) -> Path:
    return copy_dir(shipped_dir(), tmp_path_factory.mktemp("shipped") / "ontology")


@pytest.fixture
def onto_copy(tmp_path, formatted_shipped) -> Path:
    return Path(shutil.copytree(formatted_shipped, tmp_path / "ontology"))


@pytest.fixture
def fixture_copy(tmp_path) -> Path:
    return copy_dir(FIXTURE, tmp_path / "fixture")


def check(runner, *args):
    result = runner.invoke(main, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def block_lines(lines: list[str], subject: str) -> tuple[int, int]:
    """Indexes of the first and last line (the lone ".") of ``subject``'s block in a formatted file."""
    start = lines.index(subject)
    return start, lines.index(".", start)


def drop_predicate(path: Path, subject: str, predicate: str) -> int:
    """Delete ``predicate`` (all its objects) from ``subject``'s block; returns the block's 1-based line."""
    lines = path.read_text(encoding="utf-8").split("\n")
    start, end = block_lines(lines, subject)
    first = next(i for i in range(start, end) if lines[i].startswith(f"    {predicate} ") or
                 lines[i] == f"    {predicate}")
    last = next(i for i in range(first, end) if lines[i].endswith(";"))
    del lines[first:last + 1]
    path.write_text("\n".join(lines), encoding="utf-8")
    return start + 1


def finding_lines(output: str, needle: str) -> list[str]:
    return [ln for ln in output.splitlines() if needle in ln]


# -- the shipped ontology ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_exists(name):
    assert (shipped_dir() / name).is_file()


def test_shipped_ontology_passes(runner):
    result = check(runner)
    assert result.exit_code == 0, result.output
    assert re.search(r"checked \d+ files: \d+ triples, (\d+) classes", result.output)
    classes = int(re.search(r"(\d+) classes", result.output).group(1))
    assert classes > 40  # threats, defenses and taxonomy classes; a broken load shows far fewer
    assert re.search(rf"owlready2 loaded {classes} of {classes} classes", result.output)
    for stage in ("parse", "owl", "shacl", "queries"):
        assert re.search(rf"^  {stage}\s+OK\b", result.output, re.M), result.output
    reasoner = "OK" if shutil.which("java") else "SKIPPED"
    assert re.search(rf"^  reasoner\s+{reasoner}\b", result.output, re.M)
    assert "0 errors" in result.output


# -- stage a: parse ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["core.ttl", "taxonomy.ttl", "defenses.ttl", "shapes.ttl"])
def test_syntax_error_reported_as_file_line(runner, onto_copy, name):
    path = onto_copy / name
    lines = path.read_text(encoding="utf-8").split("\n")
    at = lines.index(".", len(lines) // 2) + 1  # between two statements, half way down
    lines.insert(at, "mfm:Broken rdfs:label \"broken\" ) .")
    path.write_text("\n".join(lines), encoding="utf-8")
    result = check(runner, "--ontology-dir", str(onto_copy), "--no-reasoner")
    assert result.exit_code == 1
    assert f"{name}:{at + 1}: " in result.output, result.output
    assert re.search(r"^  parse\s+FAILED", result.output, re.M)
    assert re.search(r"^  shacl\s+SKIPPED", result.output, re.M)


def test_missing_ontology_dir_is_a_clean_error(runner, tmp_path):
    result = check(runner, "--ontology-dir", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "ontology directory does not exist" in result.output


# -- stage d: quality queries on the shipped ontology --------------------------------------------------------

@pytest.mark.parametrize("name, subject", [
    ("taxonomy.ttl", "mfm:MisleadingJailbreak"),
    ("taxonomy.ttl", "mfm:PredictionFlow"),
    ("core.ttl", "mfm:onFlow"),
    ("core.ttl", "mfm:Attack"),
])
def test_missing_label_names_the_iri(runner, onto_copy, name, subject):
    line = drop_predicate(onto_copy / name, subject, "rdfs:label")
    result = check(runner, "--ontology-dir", str(onto_copy), "--no-reasoner")
    assert result.exit_code == 1
    hits = finding_lines(result.output, "[missing-label-violation]")
    assert len(hits) == 1 and f"{name}:{line}: {subject}: " in hits[0], result.output


@pytest.mark.parametrize("subject", ["mfm:MisleadingJailbreak", "mfm:MisleadingThreat"])
def test_threat_without_flow_names_the_iri(runner, onto_copy, subject):
    line = drop_predicate(onto_copy / "taxonomy.ttl", subject, "mfm:onFlow")
    result = check(runner, "--ontology-dir", str(onto_copy), "--no-reasoner")
    assert result.exit_code == 1
    hits = finding_lines(result.output, "[threat-no-flow-violation]")
    assert len(hits) == 1 and f"taxonomy.ttl:{line}: {subject}: " in hits[0], result.output


def test_extension_mistakes_are_each_reported(runner, tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "mine.ttl").write_text(EX_HEADER + """
ex:NewThreat a owl:Class ;
    rdfs:subClassOf mfm:MisleadingThreat ;
    rdfs:label "new threat" ;
    skos:definition "A test threat." ;
    mfm:onFlow mfm:PredictonFlow .

ex:NewDefense a owl:Class ;
    rdfs:subClassOf mfm:ModelLevelDefense ;
    rdfs:label "new defense" ;
    skos:definition "A test defense." .
""", encoding="utf-8")
    result = check(runner, "--extensions-dir", str(ext), "--no-reasoner")
    assert result.exit_code == 1
    out = result.output
    assert "mine.ttl:7: https://example.org/test#NewThreat:" in finding_lines(out, "[threat-no-flow-violation]")[0]
    assert "given=mfm:PredictonFlow" in out
    assert finding_lines(out, "[threat-no-axis-violation]") and finding_lines(out, "[threat-no-modality-violation]")
    assert "mine.ttl:13: https://example.org/test#NewDefense:" in finding_lines(out, "[defense-no-target-violation]")[0]
    typo = finding_lines(out, "[undeclared-term-violation]")
    assert len(typo) == 1 and "mine.ttl:11: mfm:PredictonFlow:" in typo[0]
    assert re.search(r"^  shacl\s+FAILED", out, re.M)  # the shipped shapes also require flows and levels


def test_redeclared_property_kind_fails(runner, tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "mine.ttl").write_text(EX_HEADER + "mfm:onFlow a owl:ObjectProperty .\n", encoding="utf-8")
    result = check(runner, "--extensions-dir", str(ext), "--no-reasoner")
    assert result.exit_code == 1
    hits = finding_lines(result.output, "[punned-term-violation]")
    assert len(hits) == 1 and "mfm:onFlow" in hits[0] and "owl:ObjectProperty" in hits[0]


# -- stage b: OWL load and HermiT ----------------------------------------------------------------------------

def disjoint_pair(directory: Path) -> tuple[str, str]:
    """Two classes the shipped ontology declares disjoint."""
    g = Graph()
    for p in directory.glob("*.ttl"):
        g.parse(p)
    a, b = next(iter(g.subject_objects(OWL.disjointWith)))
    return str(a), str(b)


@needs_java
@pytest.mark.parametrize("source", ["example classes", "shipped classes"])
def test_inconsistent_ontology_is_an_error(runner, tmp_path, source):
    ext = tmp_path / "ext"
    ext.mkdir()
    if source == "example classes":
        a, b = "https://example.org/test#Cat", "https://example.org/test#Dog"
        decl = f"""<{a}> a owl:Class ; rdfs:label "cat" ; rdfs:comment "A cat." ; owl:disjointWith <{b}> .
<{b}> a owl:Class ; rdfs:label "dog" ; rdfs:comment "A dog." .
"""
    else:
        a, b = disjoint_pair(shipped_dir())
        decl = ""
    (ext / "bad.ttl").write_text(EX_HEADER + decl + f"ex:thing a owl:NamedIndividual, <{a}>, <{b}> .\n",
                                 encoding="utf-8")
    result = check(runner, "--extensions-dir", str(ext))
    assert result.exit_code == 1
    assert "HermiT: the ontology is inconsistent" in result.output
    assert re.search(r"^  reasoner\s+FAILED", result.output, re.M)


@needs_java
def test_unsatisfiable_class_is_named(runner, tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "bad.ttl").write_text(EX_HEADER + """
ex:Cat a owl:Class ; rdfs:label "cat" ; rdfs:comment "A cat." ; owl:disjointWith ex:Dog .
ex:Dog a owl:Class ; rdfs:label "dog" ; rdfs:comment "A dog." .
ex:CatDog a owl:Class ; rdfs:label "catdog" ; rdfs:comment "Both." ; rdfs:subClassOf ex:Cat, ex:Dog .
""", encoding="utf-8")
    result = check(runner, "--extensions-dir", str(ext))
    assert result.exit_code == 1
    hits = finding_lines(result.output, "unsatisfiable class (")
    assert len(hits) == 1 and "bad.ttl:9: https://example.org/test#CatDog:" in hits[0], result.output


def test_missing_java_is_said_plainly(runner, monkeypatch):
    monkeypatch.setattr("mfmkg.check_owl.shutil.which", lambda name: None)
    result = check(runner, "--ontology-dir", str(FIXTURE))
    assert result.exit_code == 0, result.output
    assert "warning: HermiT consistency check skipped: java not found" in result.output
    assert re.search(r"^  reasoner\s+SKIPPED", result.output, re.M)


def test_required_reasoner_without_java_is_an_error(monkeypatch):
    monkeypatch.setattr("mfmkg.check_owl.shutil.which", lambda name: None)
    report = run_checks(check_paths(FIXTURE)[0], reasoner="hermit")
    assert not report.ok and report.stages["reasoner"][0] == "FAILED"


def test_owlready_shortfall_is_an_error(monkeypatch):
    """If owlready2 finds fewer classes than rdflib (its quiet failure mode), the check fails and names them."""
    import mfmkg.check_owl as check_owl

    real = check_owl.our_classes
    monkeypatch.setattr(check_owl, "our_classes", lambda g: real(g) | {MFM + "Phantom"})
    report = run_checks(check_paths(FIXTURE)[0], reasoner="none")
    assert not report.ok and report.stages["owl"][0] == "FAILED"
    assert any("missing: https://w3id.org/mfmkg/ont#Phantom" in f.message for f in report.errors)


# -- stage c: SHACL ------------------------------------------------------------------------------------------

def test_shacl_violation_has_focus_path_message_and_line(fixture_copy):
    coverage = "<https://w3id.org/mfmkg/id/coverage/DiffusionPurification--MisleadingAdversarial>"
    line = drop_predicate(fixture_copy / "defenses.ttl", coverage, "mfm:coveredThreat")
    report = run_checks(check_paths(fixture_copy)[0], reasoner="none")
    shacl = [f for f in report.findings if f.stage == "shacl"]
    assert len(shacl) == 1 and report.stages["shacl"][0] == "FAILED"
    assert (Path(shacl[0].file).name, shacl[0].line, shacl[0].iri) == ("defenses.ttl", line, coverage[1:-1])
    assert shacl[0].render().endswith(f"defenses.ttl:{line}: {coverage[1:-1]}: "
                                      "mfm:coveredThreat: a coverage names exactly one threat")


def test_no_shapes_file_is_a_warning(fixture_copy):
    (fixture_copy / "shapes.ttl").unlink()
    report = run_checks(check_paths(fixture_copy)[0], reasoner="none")
    assert report.ok and report.stages["shacl"][0] == "SKIPPED"


# -- stage d: the defense-coverage rule, on the small fixture ------------------------------------------------

DEFENSE = """
mfm:{name} a owl:Class ;
    rdfs:subClassOf mfm:{parent} ;
    rdfs:label "{name}" ;
    skos:definition "A test defense." .
"""


@pytest.mark.parametrize("name, parent, flagged", [
    ("GuardrailThing", "SystemLevelDefense", {"GuardrailThing"}),       # a new defense with no coverage
    ("FastPurification", "DiffusionPurification", set()),               # inherits its parent's coverage
    ("Denoiser2", "InputDenoising", {"Denoiser2"}),                     # a sibling of a covered defense
])
def test_defense_coverage_follows_the_hierarchy(fixture_copy, name, parent, flagged):
    (fixture_copy / "zz-extra.ttl").write_text(EX_HEADER + DEFENSE.format(name=name, parent=parent))
    report = run_checks(check_paths(fixture_copy)[0], reasoner="none")
    found = {f.iri.removeprefix(MFM) for f in report.findings if "[defense-no-target-violation]" in f.message}
    assert found == flagged


def test_uncovered_parent_and_child_both_flagged(fixture_copy):
    (fixture_copy / "defenses.ttl").write_text(
        (fixture_copy / "defenses.ttl").read_text().replace("mfm:coveringDefense mfm:DiffusionPurification",
                                                            "mfm:coveringDefense mfm:ModelLevelDefense"))
    report = run_checks(check_paths(fixture_copy)[0], reasoner="none")
    found = {f.iri.removeprefix(MFM) for f in report.findings if "[defense-no-target-violation]" in f.message}
    assert found == {"InputDenoising", "DiffusionPurification"}  # coverage on a level class covers nothing


def test_fixture_passes(fixture_copy):
    report = run_checks(check_paths(fixture_copy)[0], reasoner="none")
    assert report.ok, [f.render() for f in report.findings]


@pytest.mark.parametrize("query", sorted(p.name for p in checks_dir().glob("*.rq")))
def test_check_query_files_are_well_formed(query):
    from mfmkg.check_queries import load_queries

    assert query.endswith("-violation.rq")
    q = next(q for q in load_queries() if q.path.name == query)
    assert q.meta.get("title") and q.meta.get("description") and q.severity in ("error", "warning")


# -- fmt -----------------------------------------------------------------------------------------------------

def fmt(runner, *args):
    result = runner.invoke(main, ["fmt", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_fmt_check_passes_on_shipped_files(runner):
    result = fmt(runner, "--check")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", [*SHIPPED, "fixture/core.ttl", "fixture/shapes.ttl"])
def test_fmt_is_idempotent_and_keeps_the_data(runner, tmp_path, name):
    src = FIXTURE / name.removeprefix("fixture/") if name.startswith("fixture/") else shipped_dir() / name
    path = tmp_path / Path(name).name
    shutil.copy(src, path)
    assert fmt(runner, str(path)).exit_code == 0
    once = path.read_bytes()
    again = fmt(runner, str(path))
    assert again.exit_code == 0 and "0 reformatted" in again.output
    assert path.read_bytes() == once
    assert isomorphic(Graph().parse(src), Graph().parse(path))
    assert fmt(runner, "--check", str(path)).exit_code == 0


def test_fmt_ignores_statement_order(tmp_path):
    """Blocks (and sibling blank nodes) written in another order format to the same bytes."""
    a, b = tmp_path / "a.ttl", tmp_path / "b.ttl"
    shutil.copy(shipped_dir() / "shapes.ttl", a)
    format_files([a])
    text = a.read_text()
    head, sep, body = text.partition("\nPREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\n")
    blocks = [blk + "\n.\n" for blk in body.split("\n.\n") if blk.strip()]  # each statement ends in "."
    assert len(blocks) > 10
    b.write_text(head + sep + "\n".join(reversed(blocks)))
    assert b.read_text() != text
    format_files([b])
    assert b.read_text() == text


def test_fmt_stable_across_processes(tmp_path):
    """Blank node ids are random per process; the output must not depend on them."""
    for name in ("shapes.ttl", "defenses.ttl"):
        shutil.copy(shipped_dir() / name, tmp_path / name)
    format_files(sorted(tmp_path.glob("*.ttl")))
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-m", "mfmkg", "fmt", "--check", str(tmp_path)],
                              env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fmt_check_detects_and_changes_nothing(runner, tmp_path):
    path = tmp_path / "core.ttl"
    shutil.copy(FIXTURE / "core.ttl", path)  # hand-written: not canonical
    before = path.read_bytes()
    result = fmt(runner, "--check", str(tmp_path))
    assert result.exit_code == 1
    assert f"{path}: not in canonical form" in result.output
    assert path.read_bytes() == before


def test_fmt_keeps_header_and_warns_about_other_comments(runner, tmp_path):
    path = tmp_path / "x.ttl"
    path.write_text("# Header line one.\n#\n# Header line three.\n\n" + EX_HEADER +
                    "# this comment is lost\nex:A a owl:Class ; rdfs:label \"a\" .\n")
    result = fmt(runner, str(path))
    assert result.exit_code == 0
    text = path.read_text()
    assert text.startswith("# Header line one.\n#\n# Header line three.\n\nPREFIX bibo:")
    assert "this comment is lost" not in text
    assert "1 comment line(s) below the header were dropped" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name != "x.ttl"]  # no temporary files left


def test_fmt_refuses_a_broken_file_and_writes_nothing(runner, tmp_path):
    good, bad = tmp_path / "a.ttl", tmp_path / "b.ttl"
    shutil.copy(FIXTURE / "core.ttl", good)
    bad.write_text(EX_HEADER + "\nex:A a owl:Class ;;\n  rdfs:label .\n")
    before = good.read_bytes()
    result = fmt(runner, str(good), str(bad))
    assert result.exit_code == 1
    assert re.search(rf"error: {re.escape(str(bad))}:\d+: ", result.output), result.output
    assert good.read_bytes() == before


def test_fmt_counts_only_comments_it_drops(tmp_path):
    path = tmp_path / "x.ttl"
    path.write_text("# Header.\n\n" + EX_HEADER + '#\nex:A a owl:Class ;\n  rdfs:comment """two\n# lines""" .\n')
    [result] = format_files([path])
    assert result.dropped_comments == 1  # the lone "#", not the line inside the literal
    assert '"""two\n# lines"""' in path.read_text()


def test_fmt_empty_file_is_stable(tmp_path):
    path = tmp_path / "empty.ttl"
    path.write_text("# Nothing yet.\n")
    format_files([path])
    once = path.read_text()
    assert once.startswith("# Nothing yet.\n\nPREFIX ") and once.endswith(">\n")
    assert not format_files([path], check=True)[0].changed
