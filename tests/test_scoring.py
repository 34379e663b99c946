"""The Bloom scorer, the `bench score` commands and the evaluate modules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.roles import load_classifier_data
from bench.scoring.bloom import BloomClassifier, trained_classifier
from bench.scoring.judge import parse_level_answer
from bench.scoring.validate import evaluate_on


@pytest.fixture(scope="module")
def classifier() -> BloomClassifier:
    return trained_classifier()


def test_scorer_separates_levels_on_held_out_data(classifier: BloomClassifier) -> None:
    heldout = load_classifier_data("heldout")
    metrics = evaluate_on(classifier, list(heldout["text"]), list(heldout["level"]))
    assert metrics["macro_f1"] >= 0.80, metrics
    assert min(metrics["f1_per_level"].values()) >= 0.6, metrics


def test_scorer_on_unseen_clear_cases(classifier: BloomClassifier) -> None:
    texts = [
        "What is the chemical symbol for potassium?",
        "Come up with your own experiment to test whether light colour affects plant growth.",
    ]
    assert [level.value for level in classifier.predict(texts)] == ["Remember", "Create"]
    probs = classifier.predict_proba(texts)
    assert probs.shape == (2, 6) and abs(probs.sum(axis=1) - 1).max() < 1e-6


def test_bench_score_adds_prediction_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "id,feedback\n1,Which year did the Berlin Wall fall?\n2,Invent a new board game.\n"
    )
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["score", str(source), "--text-column", "feedback", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["id"] == "1" and rows[0]["pred_level"] in {"Remember", "Understand"}
    assert {f"p_{name}" for name in ("Remember", "Create")} <= set(rows[0])
    assert (
        abs(
            sum(
                float(rows[1][f"p_{n}"])
                for n in ("Remember", "Understand", "Apply", "Analyze", "Evaluate", "Create")
            )
            - 1
        )
        < 1e-3
    )


def test_bench_score_missing_column_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,hello\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["score", str(source), "--text-column", "text", "--out", str(out)]
    )
    assert result.exit_code == 2 and "no column 'text'" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_bench_score_validate_json(tmp_path: Path) -> None:
    external = tmp_path / "external"
    external.mkdir()
    (external / "mine.csv").write_text(
        "text,level\nList the noble gases.,Remember\nDesign a poster.,Create\n"
    )
    result = CliRunner().invoke(main, ["score", "validate", "--json", "--external", str(external)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"heldout", "mine.csv"}
    assert report["mine.csv"]["n"] == 2 and 0 <= report["heldout"]["macro_f1"] <= 1


@pytest.mark.parametrize(
    ("answer", "level"),
    [("Analyze", "Analyze"), ("The level is: evaluate.", "Evaluate"), ("I am not sure", None)],
)
def test_judge_answers_are_parsed(answer: str, level: str | None) -> None:
    parsed = parse_level_answer(answer)
    assert (parsed.value if parsed else None) == level


def test_metrics_load_as_evaluate_modules() -> None:
    import evaluate

    from bench.scoring.evaluate_modules import module_path

    bloom = evaluate.load(module_path("bloom_level"))
    result = bloom.compute(
        predictions=["Remember", "Apply", "Create"], references=["Remember", "Analyze", "Create"]
    )
    assert result["accuracy"] == pytest.approx(2 / 3) and result["within_one"] == 1.0
    fluency = evaluate.load(module_path("text_fluency"))
    assert fluency.compute(predictions=["a b c a b c"])["repetition"] == pytest.approx(0.25)


def test_llm_judge_returns_one_label_per_text(tiny_llama) -> None:
    from bench.scoring.judge import LLMJudge

    labels = LLMJudge(tiny_llama, batch_size=2).predict(["Name the capital.", "Plan a trip.", "x"])
    assert len(labels) == 3
    assert all(label is None or label.value for label in labels)
