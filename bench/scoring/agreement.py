"""Does the scorer agree with blind annotations of generated texts?

The annotations (`annotations.jsonl`) hold texts the embedded model wrote in a benchmark run,
labeled blind to method and target by the label guide in the datasheet: the level of the task
the text sets (or "none"), leakage, on topic, fluent, usable. Here every annotated text is
scored again with the current scorer, and the scorer's reading is compared with the
annotations: level macro-F1, task presence, and the success criterion's precision and recall
(annotated success = usable, on topic, fluent, not leaking, at the target level).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sklearn.metrics import cohen_kappa_score

from bench.criteria import Cuts, success
from bench.data.annotations import NO_TASK, annotated_success
from bench.data.levels import LEVELS, parse_level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import task_from_config
from bench.errors import DataError
from bench.models.loading import load_model
from bench.scoring.score import GenerationScorer
from bench.scoring.validate import classification_metrics


def _precision_recall(predicted: list[bool], truth: list[bool]) -> dict[str, Any]:
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    return {
        "predicted_positive": sum(predicted),
        "annotated_positive": sum(truth),
        "true_positive": tp,
        "precision": tp / sum(predicted) if sum(predicted) else float("nan"),
        "recall": tp / sum(truth) if sum(truth) else float("nan"),
    }


def score_annotated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The current scorer's scores for each annotated text (in its own scenario split)."""
    task = task_from_config(rows[0]["task"])
    splits = {row["split"] for row in rows}
    scores: dict[str, dict[str, Any]] = {}
    lm = load_model(rows[0]["model"])
    for split in sorted(splits):
        scenarios = [Scenario.from_row(r) for r in load_scenarios(split)]
        by_id = {s.id: s for s in scenarios}
        mine = [row for row in rows if row["split"] == split]
        unknown = [row["scenario_id"] for row in mine if row["scenario_id"] not in by_id]
        if unknown:
            raise DataError(f"annotations name unknown {split} scenario(s): {unknown[:3]}")
        scorer = GenerationScorer.build(task, load_exemplars(form=task.form), scenarios)
        batch = scorer.score(
            lm,
            [by_id[row["scenario_id"]] for row in mine],
            [row["text"] for row in mine],
            [parse_level(row["target"]) for row in mine],
        )
        scores.update({row["id"]: s for row, s in zip(mine, batch, strict=True)})
    return [scores[row["id"]] for row in rows]


def agreement_report(rows: list[dict[str, Any]], cuts: Cuts) -> dict[str, Any]:
    """Scorer vs annotations: level, task presence, leakage, relevance, fluency, success."""
    scores = score_annotated(rows)
    read = [s["pred_level"] if s["new_task"] else NO_TASK for s in scores]
    annotated = [row["label"]["level"] for row in rows]
    both_task = [
        i
        for i, (a, r) in enumerate(zip(annotated, read, strict=True))
        if a != NO_TASK and r != NO_TASK
    ]
    criteria = {
        "new task": ([s["new_task"] for s in scores], [a != NO_TASK for a in annotated]),
        "leaks": ([s["leaks"] for s in scores], [row["label"]["leaks"] for row in rows]),
        "relevant": ([s["relevant"] for s in scores], [row["label"]["on_topic"] for row in rows]),
        "fluent": ([cuts.fluent(s) for s in scores], [row["label"]["fluent"] for row in rows]),
        "success": ([success(s, cuts) for s in scores], [annotated_success(row) for row in rows]),
    }
    report: dict[str, Any] = {
        "n": len(rows),
        "by_method": dict(Counter(row["method"] for row in rows)),
        "level_with_none": classification_metrics(
            annotated, read, [level.value for level in LEVELS] + [NO_TASK]
        ),
        "level_where_both_see_a_task": classification_metrics(
            [annotated[i] for i in both_task], [read[i] for i in both_task]
        ),
        "criteria": {},
    }
    for name, (predicted, truth) in criteria.items():
        report["criteria"][name] = {
            **_precision_recall(predicted, truth),
            "agreement": sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(rows),
            "kappa": float(cohen_kappa_score(truth, predicted)) if len(set(truth)) > 1 else None,
        }
    control = [row for row in rows if row["method"] == "none"]
    report["control_usable_rate"] = (
        sum(row["label"]["usable"] for row in control) / len(control) if control else None
    )
    report["lines"] = _lines(report)
    return report


def _lines(report: dict[str, Any]) -> list[str]:
    level = report["level_with_none"]
    both = report["level_where_both_see_a_task"]
    methods = ", ".join(f"{m}: {n}" for m, n in report["by_method"].items())
    lines = [
        f"{report['n']} annotated texts ({methods})",
        f"level (six levels + none): macro-F1 {level['macro_f1']:.3f}, "
        f"accuracy {level['accuracy']:.3f}",
        f"level where both see a task (n={both['n']}): macro-F1 {both['macro_f1']:.3f}, "
        f"accuracy {both['accuracy']:.3f}",
    ]
    for name, c in report["criteria"].items():
        kappa = "n/a" if c["kappa"] is None else f"{c['kappa']:.2f}"
        lines.append(
            f"{name}: precision {c['precision']:.2f} "
            f"({c['true_positive']}/{c['predicted_positive']}), recall {c['recall']:.2f} "
            f"({c['true_positive']}/{c['annotated_positive']}), agreement "
            f"{c['agreement']:.2f}, kappa {kappa}"
        )
    if report["control_usable_rate"] is not None:
        lines.append(f"control texts annotated usable: {report['control_usable_rate']:.2f}")
    return lines
