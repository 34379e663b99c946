"""The project's own data: counts, splits, disjoint roles, and user-CSV validation."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bench.data.levels import LEVELS, has_signature_verb, parse_level
from bench.data.roles import (
    load_classifier_data,
    load_decoys,
    load_exemplars,
    load_generated,
    load_independent_test,
    load_labeled_csv,
    load_no_task,
)
from bench.data.scenarios import load_scenarios
from bench.errors import DataError, UnknownNameError


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def test_scenarios_count_subjects_and_split() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 150
    assert len(set(scenarios["subject"])) >= 12
    assert set(scenarios["answer_type"]) == {"misconception", "partial", "correct"}
    assert len(set(scenarios["id"])) == len(scenarios)
    dev, test = load_scenarios("dev"), load_scenarios("test")
    assert len(dev) + len(test) == len(scenarios)
    assert not set(dev["id"]) & set(test["id"])


@pytest.mark.parametrize("form", ["feedback", "question"])
def test_exemplars_per_level_and_separate_scenarios(form: str) -> None:
    exemplars = load_exemplars(form=form)
    counts = Counter(exemplars["level"])
    assert all(counts[level.value] >= 60 for level in LEVELS), counts
    assert set(exemplars["form"]) == {form}
    questions = {_normalized(q) for q in load_scenarios()["question"]}
    assert not questions & {_normalized(q) for q in exemplars["question"]}


def test_classifier_per_level_split_and_wording() -> None:
    data = load_classifier_data()
    counts = Counter(data["level"])
    assert all(counts[level.value] >= 200 for level in LEVELS), counts
    assert set(data["split"]) == {"train", "heldout"}
    assert Counter(data["form"])["question"] >= 600
    heldout = load_classifier_data("heldout")
    assert all(Counter(heldout["level"])[level.value] >= 40 for level in LEVELS)
    without_verb = sum(not has_signature_verb(r["text"], parse_level(r["level"])) for r in data)
    assert without_verb >= len(data) / 2


def test_decoys_use_other_levels_verbs() -> None:
    decoys = load_decoys()
    assert all(Counter(decoys["level"])[level.value] >= 80 for level in LEVELS)
    for row in decoys:
        level = parse_level(row["level"])
        assert any(has_signature_verb(row["text"], other) for other in LEVELS if other != level)
    assert Counter(decoys["split"])["heldout"] >= 90


def test_exemplar_split_is_the_exemplars_own_scenarios() -> None:
    scenarios = load_scenarios("exemplar")
    exemplars = load_exemplars()
    assert set(scenarios["id"]) == set(exemplars["scenario_key"])
    assert len(set(scenarios["id"])) == len(scenarios) and set(scenarios["split"]) == {"exemplar"}
    subjects = set(exemplars["subject"])
    assert set(scenarios["subject"][: len(subjects)]) == subjects  # any limit spans subjects
    evaluated = {_normalized(q) for q in load_scenarios()["question"]}
    assert not evaluated & {_normalized(q) for q in scenarios["question"]}


def test_generated_texts_are_annotated_and_split_by_scenario() -> None:
    generated = load_generated()
    assert len(generated) >= 600
    assert set(generated["method"]) == {
        "none",
        "prompting",
        "few_shot",
        "caa",
        "actadd",
        "query_sae",
        "align_sae",
    }
    assert set(generated["level"]) == {level.value for level in LEVELS} | {"none"}
    exemplar_scenarios = set(load_scenarios("exemplar")["id"])
    assert set(generated["scenario_id"]) <= exemplar_scenarios
    heldout = load_generated("heldout")
    train = load_generated("train")
    assert len(heldout) >= 100 and len(train) + len(heldout) == len(generated)
    assert not set(heldout["scenario_id"]) & set(train["scenario_id"])


def _american(text: str) -> str:
    """Writer 3 spells the British way ('memorised'); the verb lists are American."""
    return re.sub(r"(\w{3})is(e|ed|es|ing)\b", r"\1iz\2", text)


def test_independent_writers_each_wrote_decoys_of_every_level() -> None:
    independent = load_independent_test()
    for writer in ("1", "3"):
        decoys = [r for r in independent if r["writer"] == writer and r["kind"] == "decoy"]
        assert {r["level"] for r in decoys} == {level.value for level in LEVELS}
        for row in decoys:
            level, text = parse_level(row["level"]), row["text"]
            others = [o for o in LEVELS if o != level]
            assert any(has_signature_verb(t, o) for t in (text, _american(text)) for o in others)
        no_verb = [r for r in independent if r["writer"] == writer and r["kind"] == "no-verb"]
        assert no_verb
        assert not any(has_signature_verb(r["text"], o) for r in no_verb for o in LEVELS)


def test_no_task_texts_cover_every_failure_kind() -> None:
    no_task = load_no_task()
    kinds = Counter(no_task["category"])
    assert set(kinds) >= {"praise", "correction", "meta", "recitation", "incoherent"}
    assert min(kinds.values()) >= 50 and Counter(no_task["split"])["heldout"] >= 90


def test_no_text_is_shared_between_roles() -> None:
    roles = {
        "scenarios": [*load_scenarios()["question"], *load_scenarios()["student_answer"]],
        "exemplars": list(load_exemplars()["text"]),
        "classifier": list(load_classifier_data()["text"]),
        "decoys": list(load_decoys()["text"]),
        "no_task": list(load_no_task()["text"]),
        "independent": list(load_independent_test()["text"]),
        "generated": list(load_generated()["text"]),
    }
    normalized = {role: {_normalized(t) for t in texts} for role, texts in roles.items()}
    for role, texts in roles.items():
        assert len(normalized[role]) == len(texts), f"duplicate text in {role}"
    names = list(normalized)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not normalized[a] & normalized[b], f"{a} and {b} share texts"


def test_user_csv_replaces_a_role(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text('text,level\n"Name the capital of Peru.",remember\nPlan a trip.,Create\n')
    data = load_labeled_csv(path)
    assert list(data["level"]) == ["Remember", "Create"]
    assert len(load_exemplars(path, form="question")) == 2  # a CSV has no form: all of it


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("words,label\nhello,Apply\n", "missing column(s) text, level"),
        ("text,level\nhello,Synthesis\n", "unknown Bloom level 'Synthesis'"),
        ("text,level\n", "no rows"),
    ],
)
def test_bad_user_csv_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_labeled_csv(path)


def test_levels_parse_and_signature_verbs() -> None:
    assert parse_level(" create ") is LEVELS[5]
    with pytest.raises(UnknownNameError):
        parse_level("Synthesis")
    assert has_signature_verb("Compare the two maps.", LEVELS[3])
    assert not has_signature_verb("What do the two maps have in common?", LEVELS[3])
    assert not has_signature_verb("the planet", LEVELS[5])  # 'plan' is a word, not a prefix
