"""The literature classifier (loaders/vocabulary.py, loaders/classify.py): token matching with stemming, CamelCase and
hyphen handling, naming words and hints, the family decision, evidence and confidence, unknown tags; and the
classification benchmark on the real lists (bench/classification.py)."""

from __future__ import annotations

import sys

import pytest

from mfmkg.loaders.classify import ASSERTED, INFERRED, classify
from mfmkg.loaders.record import Entry
from mfmkg.loaders.vocabulary import HINT, NAMES, Vocabulary, analyse, stem

M = "https://w3id.org/mfmkg/ont#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
LABEL, SUB, ALT, HIDDEN = RDFS + "label", RDFS + "subClassOf", SKOS + "altLabel", SKOS + "hiddenLabel"


def rows():
    """A small ontology: two threat families with a goal class each, generic threat words on mfm:Threat, a defense
    group with a leaf, a modality and a paper kind."""
    t, d = "threat", "defense"
    out = [
        (M + "Threat", t, LABEL, "threat"),
        (M + "Threat", t, HIDDEN, "attack"), (M + "Threat", t, HIDDEN, "security"),
        (M + "MisleadingThreat", t, SUB, M + "Threat"), (M + "MisleadingThreat", t, LABEL, "misleading threat"),
        (M + "MisleadingThreat", t, ALT, "Hallucination"),
        (M + "MisleadingThreat", t, HIDDEN, "adversarial"), (M + "MisleadingThreat", t, HIDDEN, "safety"),
        (M + "MisleadingThreat", t, HIDDEN, "perturbation"),
        (M + "MisleadingJailbreak", t, SUB, M + "MisleadingThreat"),
        (M + "MisleadingJailbreak", t, LABEL, "misleading threat: jailbreak"),
        (M + "MisleadingJailbreak", t, HIDDEN, "jailbreak"), (M + "MisleadingJailbreak", t, HIDDEN, "red teaming"),
        (M + "MisleadingJailbreak", t, HIDDEN, "multi-modal jailbreak"),
        (M + "AgentActionThreat", t, SUB, M + "Threat"), (M + "AgentActionThreat", t, LABEL, "agent action threat"),
        (M + "AgentActionThreat", t, HIDDEN, "agent"), (M + "AgentActionThreat", t, HIDDEN, "hijacking"),
        (M + "AgentActionThreat", t, HIDDEN, "web agent"),
        (M + "AgentActionThreat", t, HIDDEN, "private attribute"),
        (M + "AgentActionGoalHijacking", t, SUB, M + "AgentActionThreat"),
        (M + "AgentActionGoalHijacking", t, LABEL, "agent action threat: goal hijacking"),
        (M + "AgentActionGoalHijacking", t, ALT, "Prompt injection"),
        (M + "AgentActionGoalHijacking", t, HIDDEN, "attribute inference"),
        (M + "MislearningThreat", t, SUB, M + "Threat"), (M + "MislearningThreat", t, LABEL, "mislearning threat"),
        (M + "MislearningThreat", t, ALT, "Poisoning"), (M + "MislearningThreat", t, HIDDEN, "backdoor"),
        (M + "MislearningBackdoor", t, SUB, M + "MislearningThreat"),
        (M + "MislearningBackdoor", t, LABEL, "mislearning threat: backdoor"),
        (M + "MislearningBackdoor", t, HIDDEN, "backdoor"),
        (M + "AgentMemoryThreat", t, SUB, M + "Threat"), (M + "AgentMemoryThreat", t, LABEL, "agent memory threat"),
        (M + "AgentMemoryDisinformation", t, SUB, M + "AgentMemoryThreat"),
        (M + "AgentMemoryDisinformation", t, LABEL, "agent memory threat: disinformation"),
        (M + "AgentMemoryDisinformation", t, HIDDEN, "rag poisoning"),
        (M + "AgentMemoryDisinformation", t, ALT, "PoisonedRAG"),
        (M + "InputDenoising", d, SUB, M + "Defense"), (M + "InputDenoising", d, LABEL, "input denoising"),
        (M + "InputDenoising", d, HIDDEN, "denoising"), (M + "InputDenoising", d, HIDDEN, "purification"),
        (M + "DiffusionPurification", d, SUB, M + "InputDenoising"),
        (M + "DiffusionPurification", d, LABEL, "diffusion purification"),
        (M + "DiffusionPurification", d, ALT, "DiffPure"),
        (M + "PoisoningDetection", d, SUB, M + "Defense"), (M + "PoisoningDetection", d, LABEL, "poisoning detection"),
        (M + "PoisoningDetection", d, HIDDEN, "backdoor defense"),
        (M + "Image", "modality", LABEL, "image"), (M + "Image", "modality", HIDDEN, "vlm"),
        (M + "Image", "modality", HIDDEN, "vision-language"),
        (M + "AttackPaper", "kind", LABEL, "attack paper"), (M + "AttackPaper", "kind", ALT, "Attack"),
    ]
    return out


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_rows(rows())


def entry(title=None, *, tags=(), categories=(), keywords=(), abstract=None) -> Entry:
    return Entry("t.json", 1, title=title, tags=list(tags), categories=list(categories), keywords=list(keywords),
                 abstract=abstract)


def linked(cls) -> dict[str, tuple]:
    """local name -> (kind, field, text, confidence) of each link."""
    return {t.rsplit("#", 1)[1]: (e[0].kind, e[0].field, e[0].text, e[0].confidence) for t, e in cls.links.items()}


def threats(cls) -> set[str]:
    """Local names of the threat classes linked."""
    groups = {r[0]: r[1] for r in rows()}
    return {t.rsplit("#", 1)[1] for t in cls.links if groups[t] == "threat"}


# -- tokens ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [("jailbreaks", "jailbreaking"), ("backdoored", "backdoors"), ("poisoned", "poison"),
                                  ("hallucination", "hallucinate"), ("injection", "injecting"),
                                  ("jailbreaker", "jailbreak"), ("vulnerabilities", "vulnerability"),
                                  ("tuning", "tune"), ("LLMs", "llm")])
def test_word_forms_meet_at_one_stem(a, b):
    assert stem(a.lower()) == stem(b.lower())


@pytest.mark.parametrize("word", ["mia", "rag", "dos", "bias", "analysis", "4v", "28k"])
def test_short_tokens_acronyms_and_numbers_are_not_stemmed(word):
    assert stem(word) == word


def test_camelcase_names_split_but_acronym_plurals_stay_whole():
    assert analyse("AudioJailbreak vs VLMGuard and PoisonedRAG").stems == "audio jailbreak vs vlm guard and poison rag"
    assert analyse("MLLMs, LVLMs, SoK, DoS").stems == "mllm lvlm sok dos"
    assert analyse("Red-Teaming naïve").stems == "red team naiv"


def test_matches_are_whole_tokens(vocab):
    assert vocab.find("media leverage ragged", "threat") == []
    assert [h.text for h in vocab.find("Jailbreaking VLMs", "threat")] == ["jailbreaking"]


def test_hyphenated_words_also_match_written_as_one(vocab):
    assert [h.text for h in vocab.find("A multimodal jailbreak", "threat")] == ["multimodal jailbreak"]
    assert [h.text for h in vocab.find("A multi-modal jailbreak", "threat")] == ["multi-modal jailbreak"]


def test_mixed_case_names_match_split_or_as_one_word(vocab):
    assert {h.form for h in vocab.find("DiffPure and diffpure", "defense")} == {"diff pur", "diffpur"}


# -- weights --------------------------------------------------------------------------------------------------

def test_weights_come_from_the_ontology(vocab):
    index = vocab.index
    assert index["hallucinat"][M + "MisleadingThreat"] == NAMES       # an altLabel names its class
    assert index["adversarial"][M + "MisleadingThreat"] == HINT       # a hidden label of a family is a hint
    assert index["jailbreak"][M + "MisleadingJailbreak"] == NAMES     # a hidden label of a goal class names it
    assert index["backdoor"] == {M + "MislearningThreat": HINT, M + "MislearningBackdoor": NAMES}
    assert index["purificat"][M + "InputDenoising"] == HINT           # a defense group's hidden label: a hint
    assert index["vlm"][M + "Image"] == NAMES                         # modalities and kinds have no subtopics


# -- the decision ---------------------------------------------------------------------------------------------

def test_a_naming_word_links_its_class_with_the_field_confidence(vocab):
    assert linked(classify(entry("Jailbreaking VLMs"), vocab)) == {
        "MisleadingJailbreak": (INFERRED, "title", "jailbreaking", 0.9), "Image": (INFERRED, "title", "vlms", 0.9)}
    assert linked(classify(entry("x", abstract="We study jailbreaks."), vocab)) == {
        "MisleadingJailbreak": (INFERRED, "abstract", "jailbreaks", 0.6)}


def test_one_hint_links_nothing(vocab):
    cls = classify(entry("Safety of diffusion"), vocab)
    assert cls.links == {} and cls.families == {M + "MisleadingThreat": (0.45, False)}


def test_two_hints_link_the_family_with_the_hint_confidence(vocab):
    got = linked(classify(entry("Adversarial perturbations"), vocab))
    assert got == {"MisleadingThreat": (INFERRED, "title", "adversarial", 0.45)}


def test_a_hint_and_a_generic_threat_word_link_the_family(vocab):
    assert set(linked(classify(entry("Security of agents"), vocab))) == {"AgentActionThreat"}
    assert threats(classify(entry("Security attacks"), vocab)) == set()  # generic words alone never link


def test_a_named_family_drops_families_with_weaker_hints(vocab):
    assert threats(classify(entry("Jailbreaking agents", tags=["Agent"]), vocab)) == {"MisleadingJailbreak"}
    # two hints (0.45 + 0.4) score less than the naming word (0.9)
    cls = classify(entry("Jailbreaking web agents", tags=["Agent"]), vocab)
    assert threats(cls) == {"MisleadingJailbreak"} and cls.families[M + "AgentActionThreat"] == (0.85, False)


def test_hints_that_score_as_high_as_the_named_family_are_kept(vocab):
    got = linked(classify(entry("Hijacking agents by poisoning"), vocab))
    assert set(got) == {"AgentActionThreat", "MislearningThreat"}


def test_a_more_specific_link_drops_its_ancestors(vocab):
    assert set(linked(classify(entry("A backdoor in CLIP"), vocab))) == {"MislearningBackdoor"}


def test_each_group_finds_its_own_longest_words(vocab):
    """"backdoor defense" is a defense word, and "backdoor" in it is still a threat word; "rag poisoning" is one
    threat word (not also "poisoning")."""
    got = linked(classify(entry("Backdoor defense for RAG poisoning"), vocab))
    assert set(got) == {"PoisoningDetection", "MislearningBackdoor", "AgentMemoryDisinformation"}
    assert threats(classify(entry("PoisonedRAG: knowledge attacks"), vocab)) == {"AgentMemoryDisinformation"}


def test_a_hint_does_not_hide_a_naming_word_inside_it(vocab):
    got = linked(classify(entry("Private attribute inference"), vocab))
    assert got["AgentActionGoalHijacking"] == (INFERRED, "title", "attribute inference", 0.9)


def test_defense_groups_need_a_naming_word_or_two_hints(vocab):
    assert linked(classify(entry("Denoising"), vocab)) == {}
    assert set(linked(classify(entry("Purification by denoising"), vocab))) == {"InputDenoising"}
    assert set(linked(classify(entry("DiffPure denoising"), vocab))) == {"DiffusionPurification"}


# -- tags -----------------------------------------------------------------------------------------------------

def test_a_tag_that_names_a_topic_is_asserted(vocab):
    got = linked(classify(entry("Something", tags=["A1. Jailbreaks", "VLM"]), vocab))
    assert got == {"MisleadingJailbreak": (ASSERTED, "tag", "A1. Jailbreaks", 1.0),
                   "Image": (ASSERTED, "tag", "VLM", 1.0)}


def test_a_tag_that_is_a_hint_is_a_hint(vocab):
    cls = classify(entry("Hijacking", tags=["Agent"]), vocab)
    assert linked(cls) == {"AgentActionThreat": (INFERRED, "title", "hijacking", 0.45)}
    assert not cls.unknown
    assert linked(classify(entry("Agents", tags=["Agent"]), vocab)) == {}  # the same word twice is one hint


def test_an_explicit_tag_that_matches_nothing_is_reported(vocab):
    cls = classify(entry("Jailbreaking", tags=["Quantum", "Attack"], categories=["Odd stuff"],
                         keywords=["unrelated keyword"]), vocab)
    assert cls.unknown == [("category", "Odd stuff"), ("tag", "Quantum")]  # author keywords are not reported
    assert set(linked(cls)) == {"MisleadingJailbreak", "AttackPaper"}


def test_a_tag_containing_a_vocabulary_word_is_searched_not_reported(vocab):
    cls = classify(entry(None, categories=["Jailbreak & friends"]), vocab)
    assert not cls.unknown and linked(cls) == {
        "MisleadingJailbreak": (INFERRED, "category", "jailbreak", 0.8)}


def test_the_digest_changes_with_the_vocabulary(vocab):
    other = Vocabulary.from_rows(rows() + [(M + "MisleadingThreat", "threat", HIDDEN, "sponge")])
    assert other.digest != vocab.digest and Vocabulary.from_rows(rows()).digest == vocab.digest


# -- the shipped ontology and the benchmark --------------------------------------------------------------------

def test_the_benchmark_meets_its_target_on_the_real_lists(capsys):
    """bench/classification.py on the copies of the lists under tests/data/literature/real (never ../shared)."""
    from conftest import REPO

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench import classification

    assert classification.data_dir() == classification.DATA_DIRS[0]
    code = classification.main([])
    out = capsys.readouterr().out
    assert "threat families" in out and "macro-F1" in out and "paper kinds" in out
    assert code == 0, out


def test_generic_threat_words_never_link_even_as_tags(vocab):
    cls = classify(entry("Something", tags=["Threat", "Security"]), vocab)
    assert cls.links == {} and cls.unknown == []
