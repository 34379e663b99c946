"""The project's own data: counts, splits, disjoint roles, and user-CSV validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.data.levels import LEVELS, has_signature_verb, parse_level
from bench.data.roles import load_classifier_data, load_exemplars, load_labeled_csv
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


def test_exemplars_per_level_and_separate_scenarios() -> None:
    exemplars = load_exemplars()
    counts = Counter(exemplars["level"])
    assert all(counts[level.value] >= 60 for level in LEVELS), counts
    questions = {_normalized(q) for q in load_scenarios()["question"]}
    assert not questions & {_normalized(q) for q in exemplars["question"]}


def test_classifier_per_level_split_and_wording() -> None:
    data = load_classifier_data()
    counts = Counter(data["level"])
    assert all(counts[level.value] >= 100 for level in LEVELS), counts
    assert set(data["split"]) == {"train", "heldout"}
    heldout = load_classifier_data("heldout")
    assert all(Counter(heldout["level"])[level.value] >= 15 for level in LEVELS)
    without_verb = sum(not has_signature_verb(r["text"], parse_level(r["level"])) for r in data)
    assert without_verb >= len(data) / 2


def test_no_text_is_shared_between_roles() -> None:
    roles = {
        "scenarios": [*load_scenarios()["question"], *load_scenarios()["student_answer"]],
        "exemplars": list(load_exemplars()["text"]),
        "classifier": list(load_classifier_data()["text"]),
    }
    normalized = {role: {_normalized(t) for t in texts} for role, texts in roles.items()}
    for role, texts in roles.items():
        assert len({_normalized(t) for t in texts}) == len(texts), f"duplicate text in {role}"
    names = list(normalized)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not normalized[a] & normalized[b], f"{a} and {b} share texts"


def test_user_csv_replaces_a_role(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text('text,level\n"Name the capital of Peru.",remember\nPlan a trip.,Create\n')
    data = load_labeled_csv(path)
    assert list(data["level"]) == ["Remember", "Create"]


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
