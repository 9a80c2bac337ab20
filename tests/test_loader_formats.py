"""Literature format parsers: exact entries from a sample of each format, the real collections' counts, malformed
inputs, format detection, and the BibTeX fast scanner's agreement with bibtexparser."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmkg.errors import LoadError
from mfmkg.loaders import bibtex, registry
from mfmkg.loaders.record import Entry

DATA = Path(__file__).parent / "data" / "literature"
REAL = DATA / "real"
CVPR_PDF = ("https://openaccess.thecvf.com/content/CVPR2023/papers/"
            "Chou_How_to_Backdoor_Diffusion_Models_CVPR_2023_paper.pdf")


def E(line, **fields):  # noqa: N802 - reads like the Entry it builds
    return Entry(file="", line=line, **fields)


EXPECTED = {
    "sample.bib": [
        E(4,
          title='Visual Adversarial Examples Jailbreak Aligned Large Language Models',
          authors=['Xiangyu Qi', 'Kaixuan Huang', 'Ashwinee Panda', 'Peter Henderson', 'Mengdi Wang',
              'Prateek Mittal'],
          year=2024,
          month=2,
          venue='Proceedings of the AAAI Conference on Artificial Intelligence',
          doi='10.1609/aaai.v38i19.30150',
          arxiv_id='2306.13213',
          keywords=['jailbreak', 'adversarial examples', 'vision-language models'],
        ),
        E(16,
          title='Extracting Training Data from Diffusion Models',
          authors=['Nicholas Carlini', 'Jamie Hayes', 'Milad Nasr', 'Matthew Jagielski', 'Vikash Sehwag',
              'Florian Tramèr', 'Borja Balle', 'Daphne Ippolito', 'Eric Wallace'],
          year=2023,
          venue='USENIX Security Symposium 2023',
          arxiv_id='2301.13188',
          url='https://arxiv.org/pdf/2301.13188v1.pdf',
        ),
        E(24,
          title=(
              "Not What You've Signed Up For: Compromising Real-World LLM-Integrated Applications with "
              'Indirect Prompt Injection'
          ),
          authors=['Kai Greshake', 'Sahar Abdelnabi', 'Shailesh Mishra', 'Christoph Endres', 'Thorsten Holz',
              'Mario Fritz'],
          year=2023,
          month=11,
          venue='Proceedings of the 16th ACM Workshop on Artificial Intelligence and Security',
          doi='10.1145/3605764.3623985',
          abstract='Large Language Models (LLMs) are increasingly being integrated into various applications.',
        ),
        E(35,
          title='FigStep: Jailbreaking Large Vision-Language Models via Typographic Visual Prompts',
          authors=['Yichen Gong', 'Delong Ran', 'Jinyuan Liu', 'Conglei Wang', 'Tianshuo Cong', 'Anyu Wang',
              'Sisi Duan', 'Xiaoyun Wang'],
          year=2023,
          venue='arXiv preprint arXiv:2311.05608',
          arxiv_id='2311.05608',
        ),
    ],
    "sample.csv": [
        E(2,
          title='Jailbreak in Pieces: Compositional Adversarial Attacks on Multi-Modal Language Models',
          authors=['Erfan Shayegani', 'Yue Dong', 'Nael Abu-Ghazaleh'],
          year=2024,
          venue='ICLR 2024',
          arxiv_id='2307.14539',
          tags=['Attack', 'Jailbreak'],
          categories=['Jailbreak'],
        ),
        E(3,
          title='Image Hijacks: Adversarial Images can Control Generative Models at Runtime',
          authors=['Luke Bailey', 'Euan Ong', 'Stuart Russell', 'Scott Emmons'],
          year=2024,
          venue='ICML 2024',
          arxiv_id='2309.00236',
          url='https://arxiv.org/abs/2309.00236v4',
          tags=['Attack'],
          categories=['Adversarial Examples'],
        ),
        E(5,
          title='Shadowcast: Stealthy Data Poisoning Attacks Against Vision-Language Models',
          authors=['Yuancheng Xu', 'Jiarui Yao', 'Manli Shu', 'Yanchao Sun', 'Zichu Wu', 'Ning Yu',
              'Tom Goldstein', 'Furong Huang'],
          year=2024,
          venue='NeurIPS 2024',
          arxiv_id='2402.06659',
          tags=['Attack', 'Poisoning'],
          categories=['Poison & Backdoor'],
        ),
    ],
    "sample.json": [
        E(2,
          title='Nightshade: Prompt-Specific Poisoning Attacks on Text-to-Image Generative Models',
          authors=['Shawn Shan', 'Wenxin Ding', 'Josephine Passananti', 'Stanley Wu', 'Haitao Zheng',
              'Ben Y. Zhao'],
          year=2024,
          venue='IEEE S&P 2024',
          arxiv_id='2310.13828',
          tags=['Attack', 'Poisoning'],
          categories=['Poison & Backdoor'],
        ),
        E(11,
          title='Agent Smith: A Single Image Can Jailbreak One Million Multimodal LLM Agents Exponentially Fast',
          authors=['Xiangming Gu', 'Xiaosen Zheng', 'Tianyu Pang', 'Chao Du', 'Qian Liu', 'Ye Wang', 'Jing Jiang',
              'Min Lin'],
          year=2024,
          month=2,
          arxiv_id='2402.08567',
          url='https://arxiv.org/abs/2402.08567',
          tags=['Attack(Agent)'],
        ),
    ],
    "sample.jsonl": [
        E(1,
          title=(
              'PoisonedRAG: Knowledge Corruption Attacks to Retrieval-Augmented Generation of Large '
              'Language Models'
          ),
          authors=['Wei Zou', 'Runpeng Geng', 'Binghui Wang', 'Jinyuan Jia'],
          year=2024,
          month=2,
          venue='USENIX Security 2025',
          arxiv_id='2402.07867',
          url='https://arxiv.org/abs/2402.07867',
          keywords=['RAG', 'knowledge corruption'],
          tags=['Attack'],
        ),
        E(3,
          title=(
              "Not What You've Signed Up For: Compromising Real-World LLM-Integrated Applications with "
              'Indirect Prompt Injection'
          ),
          authors=['Kai Greshake', 'Sahar Abdelnabi', 'Shailesh Mishra', 'Christoph Endres', 'Thorsten Holz',
              'Mario Fritz'],
          year=2023,
          month=11,
          doi='10.1145/3605764.3623985',
          arxiv_id='2302.12173',
          categories=['Prompt Injection'],
        ),
    ],
    "sample.csl.json": [
        E(2,
          title='On Evaluating Adversarial Robustness of Large Vision-Language Models',
          authors=['Yunqing Zhao', 'Tianyu Pang', 'Chao Du', 'Xiao Yang', 'Chongxuan Li', 'Ngai-Man Cheung',
              'Min Lin'],
          year=2023,
          month=12,
          venue='Advances in Neural Information Processing Systems',
          arxiv_id='2305.16934',
          url='https://arxiv.org/abs/2305.16934',
          keywords=['adversarial examples', 'VLM'],
        ),
        E(16,
          title='Abusing Images and Sounds for Indirect Instruction Injection in Multi-Modal LLMs',
          authors=['Eugene Bagdasaryan', 'Tsung-Yin Hsieh', 'Ben Nassi', 'Vitaly Shmatikov', 'OpenAI Red Team'],
          year=2023,
          month=7,
          arxiv_id='2307.10490',
          abstract=(
              'We demonstrate how images and sounds can be used for indirect prompt and instruction '
              'injection in multi-modal LLMs.'
          ),
        ),
    ],
    "sample.atom.xml": [
        E(8,
          title='Are aligned neural networks adversarially aligned?',
          authors=['Nicholas Carlini', 'Milad Nasr', 'Christopher A. Choquette-Choo'],
          year=2023,
          month=6,
          venue='NeurIPS 2023',
          arxiv_id='2306.15447',
          url='https://arxiv.org/abs/2306.15447',
          abstract=(
              'Large language models are now tuned to align with the goals of their creators, namely to '
              'be "helpful and harmless."'
          ),
          keywords=['cs.CL', 'cs.AI', 'cs.CR'],
        ),
        E(27,
          title='On the Adversarial Robustness of Multi-Modal Foundation Models',
          authors=['Christian Schlarmann', 'Matthias Hein'],
          year=2023,
          month=8,
          arxiv_id='2308.10741',
          url='https://arxiv.org/abs/2308.10741',
          abstract='Multi-modal foundation models combining vision and language models are of high interest.',
          keywords=['cs.LG'],
        ),
        E(36,
          title=(
              "Not what you've signed up for: Compromising Real-World LLM-Integrated Applications with "
              'Indirect Prompt Injection'
          ),
          authors=['Kai Greshake', 'Sahar Abdelnabi', 'Shailesh Mishra', 'Christoph Endres', 'Thorsten Holz',
              'Mario Fritz'],
          year=2023,
          month=2,
          doi='10.1145/3605764.3623985',
          arxiv_id='2302.12173',
          url='https://arxiv.org/abs/2302.12173',
          abstract='Large Language Models (LLMs) are increasingly being integrated into various applications.',
          keywords=['cs.CR'],
        ),
    ],
    "sample.md": [
        E(8,
          title='FigStep: Jailbreaking Large Vision-Language Models via Typographic Visual Prompts',
          year=2023,
          month=11,
          venue='AAAI 2025',
          arxiv_id='2311.05608',
          url='https://arxiv.org/abs/2311.05608',
          tags=['VLM'],
          categories=['Jailbreak'],
        ),
        E(9,
          title=(
              "Images are Achilles' Heel of Alignment: Exploiting Visual Vulnerabilities for "
              'Jailbreaking Multimodal Large Language Models'
          ),
          year=2024,
          month=3,
          venue='ECCV 2024 (Oral)',
          arxiv_id='2403.09792',
          url='https://arxiv.org/pdf/2403.09792v3',
          tags=['VLM', 'New dataset'],
          categories=['Jailbreak'],
        ),
        E(10,
          title='ImgTrojan: Jailbreaking Vision-Language Models with ONE Image',
          year=2024,
          venue='arXiv 2024',
          arxiv_id='2403.02910',
          url='https://arxiv.org/abs/2403.02910',
          categories=['Jailbreak'],
        ),
        E(13,
          title='Test-Time Backdoor Attacks on Multimodal Large Language Models',
          year=2024,
          month=2,
          arxiv_id='2402.08577',
          url='https://arxiv.org/abs/2402.08577',
          categories=['Poison & Backdoor'],
        ),
        E(17,
          title='How to Backdoor Diffusion Models?',
          year=2023,
          venue='CVPR 2023',
          url=CVPR_PDF,
          categories=['Poison & Backdoor'],
        ),
        E(28,
          title='M^4I: Multi-modal Models Membership Inference',
          year=2022,
          month=9,
          venue='NeurIPS 2022',
          arxiv_id='2209.06997',
          url='https://arxiv.org/abs/2209.06997',
          tags=['VLM'],
          categories=['Membership Inference'],
        ),
        E(29,
          title='Practical Membership Inference Attacks Against Large-Scale Multi-Modal Models: A Pilot Study',
          year=2023,
          month=10,
          venue='ICCV 2023',
          arxiv_id='2310.00108',
          url='https://arxiv.org/abs/2310.00108',
          tags=['CLIP'],
          categories=['Membership Inference'],
        ),
        E(30,
          title='Membership Inference on Text-to-Image Diffusion Models via Conditional Likelihood Discrepancy',
          year=2024,
          venue='NeurIPS 2024',
          arxiv_id='2405.14800',
          url='https://arxiv.org/abs/2405.14800',
          tags=['Diffusion'],
          categories=['Membership Inference'],
        ),
    ],
}

FORMAT_OF = {"sample.bib": "bibtex", "sample.csv": "csv", "sample.json": "json", "sample.jsonl": "jsonl",
             "sample.csl.json": "csljson", "sample.atom.xml": "arxiv-atom", "sample.md": "markdown"}


# -- samples: exact entries ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", list(EXPECTED))
def test_sample_parses_to_exact_entries(sample):
    parser = registry.FORMATS[FORMAT_OF[sample]]
    got = list(parser(DATA / sample, name=sample))
    want = [Entry(**{**vars(e), "file": sample}) for e in EXPECTED[sample]]
    assert got == want


@pytest.mark.parametrize("sample", list(EXPECTED))
def test_registry_detects_and_parses_each_sample(sample):
    path = DATA / sample
    assert registry.detect_format(path, path.read_bytes()[:4096]) == FORMAT_OF[sample]
    got = list(registry.parse(path))
    assert [e.file for e in got] == [str(path)] * len(EXPECTED[sample])
    assert [(e.line, e.title) for e in got] == [(e.line, e.title) for e in EXPECTED[sample]]


@pytest.mark.parametrize("sample", [s for s in EXPECTED if s != "sample.md"])
def test_format_is_sniffed_from_content_without_extension(sample):
    data = (DATA / sample).read_bytes()
    assert registry.detect_format("<stdin>", data[:4096]) == FORMAT_OF[sample]
    got = list(registry.parse(io.BytesIO(data)))
    assert got == [Entry(**{**vars(e), "file": "<stdin>"}) for e in EXPECTED[sample]]


def test_json_extension_is_sniffed_for_csl_and_jsonl():
    csl = (DATA / "sample.csl.json").read_bytes()
    assert registry.detect_format("My Library.json", csl) == "csljson"  # Zotero's default export name
    assert registry.detect_format("data.json", (REAL / "awesome-mllm-safety/data.json").read_bytes()) == "json"
    assert registry.detect_format("papers.json", (DATA / "sample.jsonl").read_bytes()) == "jsonl"


def test_markdown_is_sniffed_and_text_streams_are_read():
    text = (DATA / "sample.md").read_text(encoding="utf-8")
    assert registry.detect_format("list.txt", text.encode()) == "markdown"
    got = list(registry.parse(io.StringIO(text), name="list.txt"))
    assert [(e.line, e.title) for e in got] == [(e.line, e.title) for e in EXPECTED["sample.md"]]


def test_json_sections_give_categories_and_object_lines():
    text = '{\n  "Attack": [\n    {"Title": "A", "Link": "https://arxiv.org/abs/2402.08567"},\n\n' \
           '    {\n      "Title": "B"\n    }\n  ],\n  "version": 2,\n  "Defense": []\n}\n'
    got = list(registry.FORMATS["json"](text.encode(), name="s.json"))
    assert [(e.line, e.title, e.categories, e.arxiv_id) for e in got] == [
        (3, "A", ["Attack"], "2402.08567"), (5, "B", ["Attack"], None)]


# -- the real collections ------------------------------------------------------------------------------------

LM_SSP_COUNTS = {  # the README's own per-topic counts; they add up to 2,278
    "book.md": 3, "competition.md": 5, "leaderboard.md": 5, "toolkit.md": 13, "survey.md": 40,
    "paper/safety/general.md": 29, "paper/safety/jailbreak.md": 497, "paper/safety/alignment.md": 136,
    "paper/safety/deepfake.md": 90, "paper/safety/ethics.md": 8, "paper/safety/fairness.md": 60,
    "paper/safety/hallucination.md": 116, "paper/safety/prompt_injection.md": 101,
    "paper/safety/toxicity.md": 84, "paper/security/general.md": 14,
    "paper/security/adversarial_examples.md": 102, "paper/security/agent.md": 111,
    "paper/security/poison_&_backdoor.md": 167, "paper/security/system.md": 23, "paper/privacy/general.md": 53,
    "paper/privacy/contamination.md": 17, "paper/privacy/data_reconstruction.md": 59,
    "paper/privacy/data_reconstruction_.md": 4, "paper/privacy/membership_inference_attacks.md": 58,
    "paper/privacy/model_extraction.md": 14, "paper/privacy/privacy-preserving_computation.md": 127,
    "paper/privacy/property_inference_attacks.md": 7, "paper/privacy/side-channel.md": 10,
    "paper/privacy/unlearning.md": 67, "paper/privacy/watermark_&_copyright.md": 258,
}


def test_awesome_lm_ssp_gives_2278_entries():
    root = REAL / "awesome-lm-ssp"
    files = list(registry.iter_inputs([root]))  # README.md, LICENSE skipped
    collection = root / "collection"
    assert sorted(Path(f).relative_to(collection).as_posix() for f in files) == sorted(LM_SSP_COUNTS)
    total, problems = 0, set()
    for f in files:
        rel = Path(f).relative_to(collection).as_posix()
        entries = list(registry.parse(f))
        item_lines = [n for n, ln in enumerate(Path(f).read_text("utf-8").split("\n"), 1) if ln.startswith("- ")]
        assert len(entries) == LM_SSP_COUNTS[rel] == len(item_lines), rel   # grep -c '^- ' per file
        assert [e.line for e in entries] == item_lines
        for e in entries:
            assert e.title and e.url and e.year and e.month and len(e.categories) == 1, e
            problems |= {(rel, e.line, field, reason) for field, reason in e.problems}
        total += len(entries)
    assert total == 2278
    assert problems == {  # the same arXiv id twice in one file; nothing else is wrong enough to report
        ("paper/privacy/watermark_&_copyright.md", 240, "arxiv_id", "duplicate: arXiv 2312.04828 also at line 239"),
        ("paper/safety/jailbreak.md", 428, "arxiv_id", "duplicate: arXiv 2401.18018 also at line 427"),
        ("paper/security/adversarial_examples.md", 40, "arxiv_id", "duplicate: arXiv 2405.14646 also at line 38"),
        ("paper/security/poison_&_backdoor.md", 148, "arxiv_id", "duplicate: arXiv 2401.05949 also at line 139"),
        ("survey.md", 15, "arxiv_id", "duplicate: arXiv 2407.14937 also at line 12"),
    }


def test_awesome_lm_ssp_badges_links_and_headings():
    path = REAL / "awesome-lm-ssp/collection/paper/safety/jailbreak.md"
    by_line = {e.line: e for e in registry.parse(path)}
    first = by_line[2]
    assert (first.title, first.arxiv_id, first.year, first.month, first.tags, first.categories) == (
        "AutoDAN-Reasoning: Enhancing Strategies Exploration based Jailbreak Attacks with Test-Time Scaling",
        "2510.05379", 2025, 10, ["LLM"], ["Jailbreak"])
    venue_badge = [e for e in by_line.values() if e.arxiv_id == "2508.19292"][0]  # ![EMNLP_2025](...)
    assert venue_badge.venue == "EMNLP 2025" and venue_badge.tags == ["LLM"]
    mm = [e for e in by_line.values() if e.arxiv_id == "2508.05658"][0]  # ![MM'25](...)
    assert (mm.venue, mm.tags) == ("MM 2025", ["Diffusion"])
    survey = {e.line: e for e in registry.parse(REAL / "awesome-lm-ssp/collection/survey.md")}
    assert survey[24].arxiv_id == "2402.00357"  # https://arxiv.org//abs/2402.00357
    trustllm = [e for e in survey.values() if e.arxiv_id == "2401.05561"][0]  # code icon, then ![ICML'24]
    assert (trustllm.venue, trustllm.tags, trustllm.url) == ("ICML 2024", ["LLM"], "https://arxiv.org/abs/2401.05561")
    toolkit = {e.line: e for e in registry.parse(REAL / "awesome-lm-ssp/collection/toolkit.md")}
    assert toolkit[5].url == "https://aclanthology.org/2024.emnlp-main.1022.pdf"  # link with a leading space
    spotlight = [e for p in (REAL / "awesome-lm-ssp/collection").rglob("*.md") for e in registry.parse(p)
                 if e.venue == "ICLR 2024 (Spotlight)"]
    assert len(spotlight) == 25  # badge URL with parentheses: ICLR'24_(Spotlight)-f1b800


def test_awesome_mllm_safety_data_json_gives_81_entries_at_their_braces():
    path = REAL / "awesome-mllm-safety/data.json"
    text = path.read_text("utf-8")
    entries = list(registry.parse(path))
    assert len(entries) == 81 == text.count('"Title":')  # grep -c '"Title"'
    lines = text.split("\n")
    for e in entries:
        assert lines[e.line - 1].strip() == "{"
        assert json.loads("{" + lines[e.line + 2].strip().rstrip(",") + "}")["Title"] == e.title
        assert e.categories == ["Main"] and e.authors and e.arxiv_id and e.year and e.month and e.tags
        assert e.problems == []
    first = entries[0]
    assert (first.line, first.title, first.authors, first.year, first.month, first.tags, first.arxiv_id) == (
        3, "The Phantom Menace: Unmasking Privacy Leakages in Vision-Language Models",
        ["Simone Caldarella", "Massimiliano Mancini", "Elisa Ricci", "Rahaf Aljundi"], 2024, 8, ["A finding"],
        "2408.01228")
    both = [e for e in entries if e.tags == ["Defense", "Benchmark"]]
    assert len(both) == 4  # "Notes": "Defense, Benchmark"


def test_awesome_mllm_safety_readme_nested_variant_when_named():
    path = REAL / "awesome-mllm-safety/README.md"
    assert str(path) not in list(registry.iter_inputs([path.parent]))
    entries = list(registry.parse(path))
    text = path.read_text("utf-8")
    assert len(entries) == 91 == len(re.findall(r"^\* \*\*", text, re.M))
    assert {c: sum(e.categories == [c] for e in entries) for c in ("Evaluation", "Attack", "Defense", "Other")} \
        == {"Evaluation": 34, "Attack": 38, "Defense": 14, "Other": 5}
    assert all(e.title and e.arxiv_id and e.year and e.month for e in entries)
    dupes = [e for e in entries if e.problems]
    assert len(dupes) == 10 and all(p[0][0] == "arxiv_id" for p in (e.problems for e in dupes))
    assert (entries[0].line, entries[0].arxiv_id, entries[0].year, entries[0].month) == (48, "2408.01228", 2024, 8)


# -- malformed input -----------------------------------------------------------------------------------------

def load_error(fn, *args, **kw) -> LoadError:
    with pytest.raises(LoadError) as info:
        list(fn(*args, **kw))
    return info.value


GOOD_BIB = "@misc{a,\n  title = {Shadowcast},\n  eprint = {2402.06659}\n}\n"


def test_truncated_bibtex_is_a_file_error_at_the_open_entry(tmp_path):
    path = tmp_path / "cut.bib"
    path.write_text(GOOD_BIB + "\n@article{b,\n  title = {Image Hijacks: Adversarial Images\n")
    err = load_error(registry.parse, path)
    assert (err.path, err.line, err.field) == (str(path), 6, None)
    assert "truncated BibTeX" in err.reason and f"{path}:6:" in str(err)


def test_broken_bibtex_entry_mid_file_is_reported_and_the_rest_loads():
    text = GOOD_BIB + "@article{b,\n  title = {Unclosed,\n  year = 2024\n\n@misc{c, title={C}, year={20x4}}\n"
    got = list(bibtex.parse(text.encode(), name="mid.bib"))
    assert [(e.line, e.title) for e in got] == [(1, "Shadowcast"), (5, None), (9, "C")]
    assert got[1].problems[0][0] == "entry" and "not closed" in got[1].problems[0][1]
    assert got[2].problems == [("year", "unparseable year: '20x4'")]


def test_bibtex_duplicate_key_and_field_are_problems():
    text = GOOD_BIB + "@misc{a,\n  title = {First},\n  title = {Second},\n  doi = {not-a-doi}\n}\n"
    got = list(bibtex.parse(text.encode(), name="d.bib"))
    assert got[1].title == "First"
    assert got[1].problems == [("key", "duplicate citation key 'a' (first used at line 1)"),
                               ("title", "field 'title' given twice; the first value is kept"),
                               ("doi", "not a DOI: 'not-a-doi'")]


def test_bibtex_without_entries_is_a_file_error():
    err = load_error(bibtex.parse, b"title,year\nA,2024\n", name="x.bib")
    assert (err.path, err.line) == ("x.bib", 1) and "no BibTeX entries" in err.reason


def test_broken_json_names_line_and_column():
    text = '[\n  {"title": "A"},\n  {"title": "B",}\n]\n'
    err = load_error(registry.parse, text.encode(), name="broken.json")
    assert (err.path, err.line) == ("broken.json", 3)
    assert "broken JSON" in err.reason and "column 17" in err.reason


def test_json_of_the_wrong_shape_is_a_file_error():
    err = load_error(registry.FORMATS["json"], b'"just a string"', name="s.json")
    assert err.line == 1 and "not a JSON list of entries" in err.reason


def test_jsonl_bad_line_is_an_unreadable_entry_and_the_rest_loads():
    text = '{"title": "A", "year": 2024}\n{"title": "B", year: 2024}\n["not", "an object"]\n{"title": "D"}\n'
    got = list(registry.parse(text.encode(), name="papers.jsonl"))
    assert [(e.line, e.title) for e in got] == [(1, "A"), (2, None), (3, None), (4, "D")]
    assert got[1].problems == [("entry", "not valid JSON: Expecting property name enclosed in double quotes "
                                         "(column 16)")]
    assert got[2].problems == [("entry", "expected a JSON object, found an array")]


def test_csv_bad_rows_are_unreadable_entries_at_their_lines():
    text = 'title,year,doi\nA,2024,10.1145/3605764.3623985\nB, with comma,2024,10.1/x\n"C"x,2023,\nD,99,bad\n'
    got = list(registry.parse(text.encode(), name="p.csv"))
    assert [(e.line, e.title) for e in got] == [(2, "A"), (3, None), (4, None), (5, "D")]
    assert got[1].problems[0][0] == "entry" and "4 cells but the header has 3" in got[1].problems[0][1]
    assert got[2].problems[0][0] == "entry" and "malformed CSV row" in got[2].problems[0][1]
    assert got[3].problems == [("year", "unparseable year: '99'"), ("doi", "not a DOI: 'bad'")]


def test_csv_unclosed_quote_and_missing_title_column_are_file_errors():
    err = load_error(registry.parse, b'title,year\nA,2024\n"B,2023\nC,2022\n', name="q.csv")
    assert (err.path, err.line) == ("q.csv", 3) and "never closed" in err.reason
    err = load_error(registry.FORMATS["csv"], b"name,year\nA,2024\n", name="h.csv")
    assert (err.path, err.line) == ("h.csv", 1) and "no 'title' column" in err.reason


@pytest.mark.parametrize("fmt", list(registry.FORMATS))
def test_latin1_bytes_are_not_utf8_text(fmt):
    data = b"title\nok\nCaf\xe9 attacks\n"
    err = load_error(registry.FORMATS[fmt], data, name="latin1.txt")
    assert (err.path, err.line) == ("latin1.txt", 3)
    assert err.reason == "not UTF-8 text at byte 12: save the file as UTF-8"


@pytest.mark.parametrize("fmt,label", [("bibtex", "BibTeX"), ("csv", "CSV"), ("json", "JSON"),
                                       ("markdown", "Markdown"), ("arxiv-atom", "an arXiv Atom feed")])
def test_binary_garbage_is_refused(fmt, label):
    data = bytes(range(256)) * 4
    err = load_error(registry.FORMATS[fmt], data, name="blob.bin")
    assert err.path == "blob.bin" and err.line == 1
    assert err.reason == f"binary file, not {label} (NUL byte at byte 0)"


def test_binary_garbage_with_unknown_extension_is_not_detected():
    err = load_error(registry.parse, b"\x89PNG\r\n\x1a\n\x00\x00", name="figure.png")
    assert err.path == "figure.png" and "binary file" in err.reason


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&lol3;</title></entry></feed>
"""


def test_xml_entity_bomb_is_refused_before_parsing():
    err = load_error(registry.FORMATS["arxiv-atom"], BOMB.encode(), name="bomb.atom.xml")
    assert (err.path, err.line) == ("bomb.atom.xml", 2) and "DOCTYPE declaration refused" in err.reason


def test_malformed_xml_and_non_atom_xml_are_file_errors():
    feed = '<feed xmlns="http://www.w3.org/2005/Atom">\n<entry>\n<title>A</titel>\n</entry></feed>'
    err = load_error(registry.parse, feed.encode(), name="bad.xml")
    assert (err.path, err.line) == ("bad.xml", 3) and "not well-formed XML" in err.reason
    err = load_error(registry.FORMATS["arxiv-atom"], b"<rss><item/></rss>", name="rss.xml")
    assert "not an Atom feed" in err.reason
    err = load_error(registry.parse, b"<rss><item/></rss>", name="rss.xml")
    assert "not an Atom <feed>" in err.reason


def test_arxiv_api_error_entry_is_an_unreadable_entry():
    feed = ('<feed xmlns="http://www.w3.org/2005/Atom">\n<entry>\n<id>http://arxiv.org/api/errors#bad_id</id>\n'
            "<title>Error</title><summary>incorrect id format for 2401.x</summary></entry></feed>")
    got = list(registry.FORMATS["arxiv-atom"](feed.encode(), name="err.atom"))
    assert got == [Entry(file="err.atom", line=2,
                         problems=[("entry", "arXiv API error entry: incorrect id format for 2401.x")])]


def test_unknown_format_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Some notes about jailbreaks.\nNothing structured here.\n")
    err = load_error(registry.parse, path)
    assert err.path == str(path) and "unknown literature format" in err.reason
    with pytest.raises(LoadError) as info:
        list(registry.iter_inputs([path]))
    assert info.value.path == str(path)
    err = load_error(registry.parse, path, fmt="docx")
    assert "unknown format 'docx'" in err.reason
    with pytest.raises(LoadError, match="no such file"):
        list(registry.iter_inputs([tmp_path / "missing.bib"]))


@pytest.mark.parametrize("fmt,data", [
    ("csv", b"title,year,doi,arxiv\n,20245,doi.org/x,2401.123\n"),
    ("json", b'[{"title": "", "year": "twenty", "doi": "11.1/x", "arxiv": "2413.00001"}]'),
    ("jsonl", b'{"year": "20x4", "doi": "10.1000", "arxiv_id": "arXiv:1234"}\n'),
    ("bibtex", b"@misc{k, year={MMXXIV}, doi={https://doi.org/}, eprint={24o1.00001}, archiveprefix={arXiv}}"),
])
def test_field_problems_are_recorded_not_raised(fmt, data):
    [e] = list(registry.FORMATS[fmt](data, name="f"))
    fields = sorted(field for field, _ in e.problems)
    assert fields == ["arxiv_id", "doi", "title", "year"], e.problems
    assert (e.title, e.year, e.doi, e.arxiv_id) == (None, None, None, None)
    assert ("title", "missing title") in e.problems


# -- normalisation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,want", [
    ("2306.13213v2", "2306.13213"), ("arXiv:2306.13213", "2306.13213"), ("https://arxiv.org/pdf/2306.13213v1.pdf",
                                                                          "2306.13213"),
    ("https://arxiv.org/html/2403.09450v1", "2403.09450"), ("http://www.arxiv.org/abs/2310.02238?s=08", "2310.02238"),
    ("1412.6572", "1412.6572"), ("hep-th/9901001v3", "hep-th/9901001"), ("math.GT/0309136", "math.GT/0309136"),
    ("1412.65721", None), ("1501.0001", None), ("2413.00001", None), ("arXiv:cs", None),
])
def test_arxiv_ids(raw, want):
    from mfmkg.loaders import _common
    problems = []
    assert _common.arxiv_id(raw, problems) == want
    assert bool(problems) == (want is None)


@pytest.mark.parametrize("raw,want", [
    ("10.1145/3605764.3623985", "10.1145/3605764.3623985"), ("https://doi.org/10.1609/AAAI.V38I19.30150",
                                                            "10.1609/aaai.v38i19.30150"),
    ("http://dx.doi.org/10.1000/XYZ", "10.1000/xyz"), ("doi: 10.1000/abc", "10.1000/abc"), ("10.1000", None),
    ("https://doi.org/", None),
])
def test_dois(raw, want):
    from mfmkg.loaders import _common
    assert _common.doi(raw, []) == want


@pytest.mark.parametrize("label,want", [
    ("EMNLP_2025", ("EMNLP 2025", 2025)), ("MM'25", ("MM 2025", 2025)), ("ICLR'24 (Spotlight)",
                                                                          ("ICLR 2024 (Spotlight)", 2024)),
    ("USENIX Security'25", ("USENIX Security 2025", 2025)), ("S&P'24", ("S&P 2024", 2024)),
    ("WMark@ICLR‘25", ("WMark@ICLR 2025", 2025)), ("NeurIPS 2023", ("NeurIPS 2023", 2023)),
    ("LLM", None), ("Best Paper", None), ("New dataset", None), ("GPT-4", None),
])
def test_venue_badges(label, want):
    from mfmkg.loaders.markdown import venue_of
    assert venue_of(label) == want


def test_bibtex_latex_and_names():
    text = (r"@article{k, title = {{\"U}ber {GPT}-4 --- 50\% of $\alpha$-{CLIP} \emph{models}}, "
            r"author = {M{\"u}ller, J{\"o}rg and {Barnes and Noble, Inc.} and van der Berg, Jan and others}}")
    [e] = list(bibtex.parse(text.encode(), name="l.bib"))
    assert e.title == "Über GPT-4 — 50% of α-CLIP models"
    assert e.authors == ["Jörg Müller", "Barnes and Noble, Inc.", "Jan van der Berg"]


# -- directories ---------------------------------------------------------------------------------------------

def test_iter_inputs_expands_directories_to_known_formats(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name, content in [("a.bib", GOOD_BIB), ("README.md", "# x\n- [a](https://x.org)\n"), ("LICENSE", "MIT"),
                          ("NOTICE.md", "# n"), (".hidden.csv", "title\nA\n"), ("notes.txt", "hello"),
                          ("sub/b.md", "- [x](https://x.org)\n"), ("sub/c.json", "[]"), ("sub/d.xml", "<rss/>"),
                          ("sub/e.atom", "<feed/>"), (".git/f.bib", GOOD_BIB)]:
        (tmp_path / name).write_text(content)
    got = [Path(p).relative_to(tmp_path).as_posix() for p in registry.iter_inputs([tmp_path])]
    assert got == ["a.bib", "sub/b.md", "sub/c.json", "sub/e.atom"]
    assert list(registry.iter_inputs([tmp_path / "README.md"])) == [str(tmp_path / "README.md")]


# -- BibTeX: the fast scanner agrees with bibtexparser on every block it accepts ------------------------------

_text = st.text(alphabet="ab ,=#@%\"'\\\n()~$", max_size=10)
_braced = st.recursive(_text, lambda inner: st.lists(st.one_of(inner, inner.map(lambda s: "{" + s + "}")),
                                                     max_size=3).map("".join), max_leaves=6)
_value = st.lists(st.one_of(_braced.map(lambda s: "{" + s + "}"),
                            st.text(alphabet="ab ,=#@%\\\n(){}", max_size=10).map(lambda s: f'"{s}"'),
                            st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)),
                  min_size=1, max_size=3).map(" # ".join)
_field = st.tuples(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _value)


@st.composite
def _blocks(draw):
    key = draw(st.from_regex(r"[A-Za-z0-9:_-]{0,8}", fullmatch=True))
    fields = draw(st.lists(_field, max_size=4))
    body = "".join(f",\n  {k} = {v}" for k, v in fields)
    text = f"@article{{{key}{body}{draw(st.sampled_from(['', ',', ' ,  ']))}\n}}\n"
    if draw(st.booleans()):  # sometimes break it
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(alphabet="{}\",=#@ \n(", min_size=1, max_size=3)) + text[at:]
    return text


@settings(max_examples=400, deadline=None)
@given(_blocks())
def test_bibtex_scanner_agrees_with_bibtexparser(text):
    import bibtexparser
    from bibtexparser import model

    fast = bibtex._scan(text, 0, len(text), 1)
    if fast is None or not fast or text.count("\n@") or fast[0][0] != "entry":
        return  # handed to bibtexparser (or several blocks): nothing to compare
    library = bibtexparser.parse_string(text, parse_stack=[])
    blocks = [b for b in library.blocks if not isinstance(b, model.ImplicitComment)]
    assert len(blocks) == 1, (text, blocks)
    block = blocks[0]
    if isinstance(block, model.DuplicateFieldKeyBlock):
        block = block.ignore_error_block
    assert isinstance(block, model.Entry), (text, block)
    _kind, _line, etype, key, fields = fast[0]
    assert (etype, key, fields) == (block.entry_type, block.key, [(f.key, f.value) for f in block.fields])


def test_bibtex_scanner_takes_the_regular_blocks(monkeypatch):
    def no_fallback(*args):
        raise AssertionError("fell back to bibtexparser")

    monkeypatch.setattr(bibtex, "_fallback", no_fallback)
    assert len(list(bibtex.parse(DATA / "sample.bib"))) == 4


def test_arxiv_doi_gives_the_arxiv_id():
    [e] = list(registry.FORMATS["jsonl"](b'{"title": "T", "doi": "https://doi.org/10.48550/arXiv.2306.13213"}\n',
                                         name="a.jsonl"))
    assert (e.doi, e.arxiv_id, e.problems) == ("10.48550/arxiv.2306.13213", "2306.13213", [])
