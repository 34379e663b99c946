"""Per-text scores, stored with each row; cuts and aggregates are made at report time.

For each text: the Bloom level the classifier reads and whether the text sets a task at all
(a text that sets no task, or merely restates the scenario's question, is never on target),
instruction leakage, relevance by retrieval among the split's scenarios, and fluency
(perplexity given the control prompt under the unsteered model, repetition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np

from bench.data.instructions import all_instruction_texts
from bench.data.levels import LEVELS, Level
from bench.data.roles import load_classifier_data, load_decoys
from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS, Task
from bench.models.generation import render_prompt
from bench.models.loading import LoadedModel
from bench.profiling import section
from bench.retrieval import RELEVANCE_TOP_K
from bench.scoring.bloom import TrainedScorer, trained_scorer
from bench.scoring.embeddings import sentence_encoder
from bench.scoring.fingerprint import scorer_fingerprint
from bench.scoring.fluency import ContextReader, distinct_n, repetition_rate
from bench.scoring.leakage import ReferenceSet
from bench.scoring.relevance import RESTATE_SIMILARITY, cosine, retrieval_ranks, scenario_text

TASK_THRESHOLD = 0.5
"""A text sets a task when the detector's probability is at least this."""


def sets_task(task_prob: float, text: str) -> bool:
    """The detector says the text sets a task (and the text is not empty)."""
    return bool(task_prob >= TASK_THRESHOLD) and bool(text.strip())


def restates(question_similarity: float) -> bool:
    """The text asks its scenario's own question again (so it sets no new task)."""
    return bool(question_similarity >= RESTATE_SIMILARITY)


def reference_set(task: Task, exemplars: datasets.Dataset | None) -> ReferenceSet:
    """What no text may recite: every task's prompt, all level instructions and definitions,
    and the exemplar texts (what few-shot prompts show); the same for every method. The
    scorer's level-labeled teacher texts define common language, which is no recital."""
    prompts = [t.system for t in TASKS.values()] + [t.request for t in TASKS.values()]
    prompts += [task.system, task.request, task.cue]
    texts = list(exemplars["text"]) if exemplars is not None else []
    common = list(load_classifier_data()["text"]) + list(load_decoys()["text"])
    return ReferenceSet(tuple(prompts + all_instruction_texts()), tuple(texts), tuple(common))


@dataclass
class GenerationScorer:
    """Scores texts written for scenarios of one split, under one task."""

    models: TrainedScorer
    task: Task
    reference: ReferenceSet
    split_ids: list[str]
    split_embeddings: np.ndarray
    """Unit embeddings of every scenario of the split (question + answer), for retrieval."""
    fingerprint: str
    reader: ContextReader | None = field(default=None, repr=False)
    """Reads texts in their control contexts (each context once) for the latest model."""

    @classmethod
    def build(
        cls, task: Task, exemplars: datasets.Dataset | None, split: list[Scenario]
    ) -> GenerationScorer:
        encoder = sentence_encoder()
        embeddings = encoder.encode([scenario_text(s.question, s.student_answer) for s in split])
        return cls(
            trained_scorer(),
            task,
            reference_set(task, exemplars),
            [s.id for s in split],
            embeddings,
            scorer_fingerprint(),
        )

    def control_contexts(self, lm: LoadedModel, scenarios: list[Scenario]) -> list[str]:
        """The control prompt of each scenario, rendered with the task's cue: the one context
        every method's text is read in for perplexity."""
        return [render_prompt(lm, self.task.messages(s), self.task.cue) for s in scenarios]

    def text_scores(
        self, texts: list[str], embeddings: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """The scores that need only the text: level read, task presence, leakage, repetition."""
        if embeddings is None:
            with section("embeddings"):
                embeddings = sentence_encoder().encode(texts)
        with section("classifier"):
            level_probs = self.models.level_probs(texts, embeddings)
        with section("task detector"):
            task_probs = self.models.task_probs(texts, embeddings)
        rows = []
        for i, text in enumerate(texts):
            with section("leakage"):
                leakage = self.reference.leakage(text)
            rows.append(
                {
                    "pred_level": LEVELS[int(level_probs[i].argmax())].value,
                    "level_probs": {
                        level.value: round(float(p), 5)
                        for level, p in zip(LEVELS, level_probs[i], strict=True)
                    },
                    "task_prob": round(float(task_probs[i]), 5),
                    "sets_task": sets_task(task_probs[i], text),
                    **leakage,
                    "repetition": repetition_rate(text),
                    "distinct_2": distinct_n(text, 2),
                }
            )
        return rows

    def score(
        self,
        reference: LoadedModel | None,
        scenarios: list[Scenario],
        texts: list[str],
        target: Level | list[Level | None] | None,
    ) -> list[dict[str, Any]]:
        """One dict per text written for `scenarios` (of this scorer's split). `reference`
        (the unsteered model, no hooks active) gives perplexity; without it perplexity is NaN.
        `target` is one level for all texts, one per text, or None (then no on-target)."""
        targets = target if isinstance(target, list) else [target] * len(texts)
        encoder = sentence_encoder()
        with section("embeddings"):
            embeddings = encoder.encode(texts)  # once, for level, task presence and relevance
            questions = encoder.encode([s.question for s in scenarios])
        rows = self.text_scores(texts, embeddings)
        with section("relevance"):
            index = {scenario_id: i for i, scenario_id in enumerate(self.split_ids)}
            own = [index[s.id] for s in scenarios]
            ranks = retrieval_ranks(embeddings, self.split_embeddings, own)
            similarity = cosine(embeddings, self.split_embeddings[own])
            restating = cosine(embeddings, questions)
        ppl = [float("nan")] * len(texts)
        if reference is not None:
            if self.reader is None or self.reader.lm is not reference:
                self.reader = ContextReader(reference)
            ppl = self.reader.perplexities(self.control_contexts(reference, scenarios), texts)
        for i, row in enumerate(rows):
            restating_question = restates(restating[i])
            row.update(
                {
                    "question_similarity": round(restating[i], 5),
                    "restates_question": restating_question,
                    "new_task": row["sets_task"] and not restating_question,
                    "relevance": round(similarity[i], 5),
                    "relevance_rank": ranks[i],
                    "relevant": ranks[i] <= RELEVANCE_TOP_K,
                    "perplexity": ppl[i],
                }
            )
            level = targets[i]
            if level is not None:
                predicted = Level(row["pred_level"])
                row["on_target"] = row["new_task"] and predicted == level
                row["level_distance"] = abs(predicted.index - level.index)
        return rows
