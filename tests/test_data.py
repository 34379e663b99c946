"""The project's own data: counts, splits, disjoint roles, and user-CSV validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.data.levels import LEVELS, has_signature_verb, parse_level
from bench.data.roles import (
    load_classifier_data,
    load_decoys,
    load_exemplars,
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
