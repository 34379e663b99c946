"""Raw scores of generations, stored with each row; cuts and aggregates are made at report time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.data.levels import LEVELS, Level
from bench.data.prompts import Message
from bench.data.scenarios import Scenario
from bench.models.loading import LoadedModel
from bench.scoring.bloom import BloomClassifier, trained_classifier
from bench.scoring.embeddings import sentence_encoder
from bench.scoring.fluency import distinct_n, perplexities, prompt_copy_rate, repetition_rate
from bench.scoring.relevance import relevance, scenario_text


@dataclass
class GenerationScorer:
    """Bloom level (classifier), fluency (under the unsteered reference LM) and relevance."""

    classifier: BloomClassifier

    @classmethod
    def default(cls) -> GenerationScorer:
        return cls(trained_classifier())

    def score(
        self,
        reference: LoadedModel,
        scenarios: list[Scenario],
        prompts: list[list[Message]],
        texts: list[str],
        target: Level,
    ) -> list[dict[str, Any]]:
        """One dict per text. `reference` must run without steering hooks; `prompts` are the
        messages each text was generated from (to measure copying, not to know the method)."""
        encoder = sentence_encoder()
        embeddings = encoder.encode(texts)  # once, for both the level and the relevance
        probs = self.classifier.predict_proba(texts, embeddings=embeddings)
        ppl = perplexities(reference, texts)
        sims = relevance(
            embeddings,
            encoder.encode([scenario_text(s.question, s.student_answer) for s in scenarios]),
        )
        rows = []
        for i, text in enumerate(texts):
            predicted = LEVELS[int(probs[i].argmax())]
            rows.append(
                {
                    "pred_level": predicted.value,
                    "level_probs": {
                        level.value: round(float(p), 5)
                        for level, p in zip(LEVELS, probs[i], strict=True)
                    },
                    "on_target": predicted == target,
                    "level_distance": abs(predicted.index - target.index),
                    "perplexity": ppl[i],
                    "repetition": repetition_rate(text),
                    "distinct_2": distinct_n(text, 2),
                    "prompt_copy": prompt_copy_rate(
                        text, " ".join(m["content"] for m in prompts[i])
                    ),
                    "relevance": sims[i],
                }
            )
        return rows
