"""The scorer: level, task presence, leakage, relevance; `bench score` commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.levels import LEVELS, Level, has_signature_verb
from bench.data.roles import load_generated
from bench.data.tasks import TASKS
from bench.errors import ConfigError
from bench.scoring.bloom import (
    ClassifierSettings,
    TrainedScorer,
    TrainingSet,
    level_training_data,
    task_training_data,
    trained_scorer,
)
from bench.scoring.judge import LLMJudge, parse_level_answer
from bench.scoring.leakage import ReferenceSet, names_taxonomy, talks_about_student
from bench.scoring.relevance import retrieval_ranks
from bench.scoring.score import reference_set
from bench.scoring.sevenway import FineTunedEncoder, FineTuneSettings, JointClassifier
from bench.scoring.validate import read_levels, validate


@pytest.fixture(scope="module")
def scorer() -> TrainedScorer:
    return trained_scorer()


@pytest.fixture(scope="module")
def report(scorer: TrainedScorer) -> dict:
    return validate(scorer, None)


def test_scorer_meets_its_held_out_targets(report: dict) -> None:
    assert report["heldout"]["macro_f1"] >= 0.85, report["heldout"]
    assert report["decoys-heldout"]["macro_f1"] >= 0.80, report["decoys-heldout"]
    assert report["no-verb-heldout"]["macro_f1"] >= 0.85, report["no-verb-heldout"]
    assert report["task-presence-heldout"]["macro_f1"] >= 0.90, report["task-presence-heldout"]
    # validation-only writer's decoys; held-out generations read with 'none' (0.447 measured,
    # 0.402 for the same design without the annotated generations)
    assert report["independent3-decoy"]["macro_f1"] >= 0.85, report["independent3-decoy"]
    assert report["generated-heldout"]["macro_f1"] >= 0.42, report["generated-heldout"]


# Pairs that differ only in a decoy: a signature verb of another level, used as framing.
DECOY_PAIRS = [
    (
        Level.REMEMBER,
        "Let's {} your answer: first, write down the formula for density from memory.",
        "analyze",
        "look at",
    ),
    (
        Level.REMEMBER,
        "Before we {} your method, what is the chemical symbol for iron?",
        "evaluate",
        "go over",
    ),
    (
        Level.UNDERSTAND,
        "You {} a neat poster. In your own words, why does the Moon show phases?",
        "designed",
        "made",
    ),
    (
        Level.APPLY,
        "Don't {} your answer yet; work out the area of a triangle with base 6 cm and height 4 cm.",
        "justify",
        "worry about",
    ),
    (
        Level.ANALYZE,
        "We'll {} the essay later; for now, which of your three reasons depends on the other two?",
        "plan",
        "write",
    ),
    (
        Level.EVALUATE,
        "You {} the options well. Which of the two routes would you pick for a "
        "wheelchair user, and why?",
        "listed",
        "gave",
    ),
    (
        Level.CREATE,
        "Once you have {} the rules, make up a board game of your own that practises fractions.",
        "recalled",
        "read",
    ),
    (
        Level.APPLY,
        "After you have {} the two samples, how many grams of salt are in 250 mL of a "
        "40 g/L solution?",
        "compared",
        "looked at",
    ),
]


def test_a_decoy_verb_does_not_decide_the_level(scorer: TrainedScorer) -> None:
    """Each pair reads as one level with or without the decoy; and that level is the label
    (one miss allowed: the scorer is 0.9 accurate on plain text, see the datasheet)."""
    texts = [template.format(word) for _, template, *words in DECOY_PAIRS for word in words]
    read = [LEVELS[i] for i in scorer.level_probs(texts).argmax(axis=1)]
    for k, (level, template, decoy, neutral) in enumerate(DECOY_PAIRS):
        assert any(has_signature_verb(decoy, other) for other in LEVELS if other != level)
        assert not any(has_signature_verb(neutral, other) for other in LEVELS)
        assert read[2 * k] == read[2 * k + 1], (template, read[2 * k], read[2 * k + 1])
    right = sum(read[2 * k] == level for k, (level, *_) in enumerate(DECOY_PAIRS))
    assert right >= len(DECOY_PAIRS) - 1, read


def test_task_presence_on_clear_cases(scorer: TrainedScorer) -> None:
    tasks = ["What is the chemical symbol for potassium?", "Design a poster that explains erosion."]
    none = [
        "Great job, your answer shows real effort!",
        "The student seems to understand the basics of photosynthesis.",
        "the the cell is the cell of the",
    ]
    probs = scorer.task_probs(tasks + none)
    assert (probs[:2] >= 0.5).all() and (probs[2:] < 0.5).all(), probs


def test_annotated_generations_train_both_classifiers() -> None:
    """Texts at a level join the level classifier's data; every text joins the task
    detector's, those annotated 'none' as texts that set no task."""
    train = load_generated("train")
    at_level = [r for r in train if r["level"] != "none"]
    plain = ClassifierSettings(train_on_generated=False)
    more = ClassifierSettings(train_on_generated=True, generated_weight=3.0)
    levels = level_training_data(more)
    assert level_training_data(plain).texts + [r["text"] for r in at_level] == levels.texts
    n = len(at_level)
    assert [LEVELS[i].value for i in levels.labels[-n:]] == [r["level"] for r in at_level]
    assert levels.weights[-n:] == [3.0] * n and set(levels.weights[:-n]) == {1.0}
    tasks = task_training_data(more)
    label = dict(zip(tasks.texts, tasks.labels, strict=True))
    assert all(label[r["text"]] == (r["level"] != "none") for r in train)
    assert len(tasks.texts) == len(task_training_data(plain).texts) + len(train)


def test_the_benchmark_reads_none_for_texts_that_set_no_new_task(scorer: TrainedScorer) -> None:
    question = "Why do you need to finish a full course of antibiotics?"
    texts = [
        "Why do you need to finish the full course of antibiotics?",  # restates
        "Great job, your answer shows real effort!",
        "   ",
        "What is the name of the organ that pumps blood around the body?",
    ]
    assert read_levels(scorer, texts, [question] * len(texts)) == ["none"] * 3 + ["Remember"]


def test_seven_way_designs_give_level_and_task_probabilities() -> None:
    texts = ["What is the chemical symbol for potassium?", "Great job, you really tried!"]
    joint = JointClassifier(ClassifierSettings(train_on_generated=True))
    levels = joint.level_probs(texts)
    assert levels.shape == (2, len(LEVELS)) and np.allclose(levels.sum(axis=1), 1.0)
    assert joint.task_probs(texts)[0] >= 0.5 > joint.task_probs(texts)[1]
    assert LEVELS[int(levels[0].argmax())] is Level.REMEMBER


def test_fine_tuned_encoder_trains_deterministically(monkeypatch: pytest.MonkeyPatch) -> None:
    """A two-step fine-tune on eight texts: the same seed gives the same model, and the
    probabilities are well formed (the full fine-tune is timed by `bench score designs`)."""
    import bench.scoring.sevenway as sevenway

    texts = [f"Text number {i} about cells." for i in range(8)]
    data = TrainingSet()
    data.add(texts, [*range(7), 6])
    monkeypatch.setattr(sevenway, "seven_way_training_data", lambda _: data)
    settings = FineTuneSettings(epochs=1, batch_size=4, max_length=16)
    first, second = FineTunedEncoder(settings).fit(), FineTunedEncoder(settings).fit()
    probs = first.level_probs(texts[:3])
    assert probs.shape == (3, len(LEVELS)) and np.allclose(probs.sum(axis=1), 1.0)
    assert np.array_equal(probs, second.level_probs(texts[:3]))
    assert first.train_seconds > 0
    with pytest.raises(ConfigError, match="fine-tune settings"):
        FineTuneSettings(epochs=0)


def test_leakage_catches_recited_instructions_through_case_and_punctuation() -> None:
    reference = reference_set(TASKS["question"], None)
    recital = "ASK the student to: break the idea into PARTS -- compare, find causes!"
    assert reference.recites(recital)
    assert reference.leakage(recital)["leaks"]
    clean = "Which of your two causes would still hold if the river froze?"
    assert not any(reference.leakage(clean).values())


def test_leakage_names_and_third_person() -> None:
    assert names_taxonomy("This is an Analyze-level question from Bloom's list.")
    assert names_taxonomy("Evaluate: is the method fair?")
    assert not names_taxonomy("What level of the ocean gets the most light?")
    assert not names_taxonomy("Can you create a model of the cell?")
    assert talks_about_student("The student should compare the two maps.")
    assert not talks_about_student("Could you compare the two maps?")


def test_common_teacher_language_is_no_recital() -> None:
    reference = ReferenceSet(
        ("give an everyday example of the idea",), common=("Give an everyday example of it.",)
    )
    assert not reference.recites("Can you give an everyday example of friction?")
    assert reference.recites("Can you give an example of the idea?")  # "example of the idea"


def test_exemplar_recital_needs_a_longer_run() -> None:
    reference = ReferenceSet(
        ("ask one short question",), ("what would happen to the ice if the room were warmer",)
    )
    assert not reference.recites("What would happen to the ice in a freezer?")  # 6 shared words
    assert reference.recites("So, what would happen to the ice if the room were warmer?")


def test_retrieval_rank_of_the_own_scenario() -> None:
    scenarios = np.eye(4)
    texts = np.array([[0.9, 0.1, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    assert retrieval_ranks(texts, scenarios, [0, 0, 2]) == [1, 2, 4]  # ties count against


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_bench_score_writes_every_criterion(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    run = CliRunner().invoke(
        main,
        [
            "run",
            "--model",
            "tiny-llama",
            "--method",
            "none",
            "--levels",
            "Apply",
            "--limit",
            "4",
            "--store",
            str(store),
            "decoding.max_new_tokens=4",
        ],
    )
    assert run.exit_code == 0, run.output
    source = tmp_path / "in.csv"
    _write(
        source,
        [
            {
                "q": "What is an isotope?",
                "a": "An atom.",
                "text": "What is the mass of carbon-14?",
                "target": "remember",
            },
            {
                "q": "Why do leaves change colour?",
                "a": "Cold.",
                "text": "Great answer!",
                "target": "Create",
            },
        ],
    )
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main,
        [
            "score",
            str(source),
            "--question-column",
            "q",
            "--answer-column",
            "a",
            "--target-column",
            "target",
            "--model",
            "tiny-llama",
            "--cuts-from",
            str(store),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    for column in (
        "pred_level",
        "p_Create",
        "task_prob",
        "leaks",
        "relevance_rank",
        "relevant",
        "perplexity",
        "fluent",
        "on_target",
        "success",
    ):
        assert rows[0][column] != "", column
    assert rows[1]["sets_task"] == "False" and rows[1]["success"] == "False"
    note = json.loads(Path(f"{out}.json").read_text())
    assert "top 2 of 2" in note["relevance"] and note["fluency_cuts"]["n_control"] == 4


def test_bench_score_without_scenarios_leaves_their_columns_empty(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    _write(source, [{"id": "1", "feedback": "Which year did the Berlin Wall fall?"}])
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["score", str(source), "--text-column", "feedback", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(out.open()))
    assert row["id"] == "1" and row["pred_level"] == "Remember" and row["sets_task"] == "True"
    assert row["relevant"] == row["perplexity"] == row["success"] == ""
    assert sum(float(row[f"p_{level.value}"]) for level in LEVELS) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-column", "text"], "no column 'text'"),
        (["--text-column", "body", "--target-column", "level"], "no column 'level'"),
        (["--text-column", "body", "--question-column", "body"], "give both --question-column"),
        (["--text-column", "body", "--model", "tiny-llama"], "--model needs --question-column"),
        (["--text-column", "body", "--cuts-from", "nowhere.sqlite"], "--cuts-from needs --model"),
    ],
)
def test_bench_score_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,hello\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["score", str(source), *args, "--out", str(out)])
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_bench_score_validate_reports_every_split(tmp_path: Path) -> None:
    external = tmp_path / "external"
    external.mkdir()
    (external / "mine.csv").write_text(
        "text,level\nList the noble gases.,Remember\nDesign a poster.,Create\n"
    )
    result = CliRunner().invoke(main, ["score", "validate", "--json", "--external", str(external)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {
        "heldout",
        "decoys-heldout",
        "no-verb-heldout",
        "independent-plain",
        "independent-no-verb",
        "independent-decoy",
        "independent3-no-verb",
        "independent3-decoy",
        "task-presence-heldout",
        "generated-heldout",
        "annotations-dev",
        "mine.csv",
    }
    assert report["mine.csv"]["n"] == 2


def test_bench_score_validate_missing_external_folder_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["score", "validate", "--external", str(tmp_path / "no")])
    assert result.exit_code == 2 and "external folder not found" in result.stderr


@pytest.mark.parametrize(
    ("answer", "level"),
    [("Analyze", "Analyze"), ("The level is: evaluate.", "Evaluate"), ("I am not sure", None)],
)
def test_judge_answers_are_parsed(answer: str, level: str | None) -> None:
    parsed = parse_level_answer(answer)
    assert (parsed.value if parsed else None) == level


def test_llm_judge_labels_each_text_from_the_models_answer(
    tiny_llama, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.scoring.judge as judge
    from bench.models.generation import Generation

    answers = iter(["Remember", "create, I think", "no idea"])

    def fake_generate(lm, prompts, decoding):
        assert decoding.greedy and all("Feedback:" in p[-1]["content"] for p in prompts)
        return [Generation(next(answers), 1, True) for _ in prompts]

    monkeypatch.setattr(judge, "generate", fake_generate)
    labels = LLMJudge(tiny_llama, batch_size=2).predict(["Name it.", "Plan it.", "x"])
    assert labels == [Level.REMEMBER, Level.CREATE, None]
