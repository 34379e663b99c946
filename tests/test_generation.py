"""Batched generation: padding-invariant, seeded, phase-aware, cue and stop rule, gradients."""

from __future__ import annotations

import torch

from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS, StopRule
from bench.hooks import current_phase, read_site, replace_site
from bench.models.generation import Decoding, generate, render_prompt
from bench.models.loading import LoadedModel

SCENARIOS = [
    Scenario("a", "biology", "What do mitochondria do?", "They make proteins."),
    Scenario("b", "algebra", "Solve 2x + 3 = 11 for x, showing each step of your work.", "x = 4"),
]
TASK = TASKS["feedback"]
PROMPTS = [TASK.messages(s) for s in SCENARIOS]


def test_batched_greedy_equals_one_at_a_time(tiny_lm: LoadedModel) -> None:
    """Left padding and the KV cache change nothing: same tokens as unbatched (float32)."""
    decoding = Decoding(max_new_tokens=12, greedy=True)
    batched = generate(tiny_lm, PROMPTS, decoding)
    single = [generate(tiny_lm, [prompt], decoding)[0] for prompt in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.n_tokens > 0 for g in batched)


def test_same_seed_same_text_other_seed_other_text(tiny_llama: LoadedModel) -> None:
    decoding = Decoding(max_new_tokens=16, temperature=1.0, top_p=1.0)
    first = generate(tiny_llama, PROMPTS, decoding, seeds=[1, 2])
    again = generate(tiny_llama, PROMPTS, decoding, seeds=[1, 2])
    other = generate(tiny_llama, PROMPTS, decoding, seeds=[3, 4])
    assert [g.text for g in first] == [g.text for g in again]
    assert [g.text for g in first] != [g.text for g in other]


def test_hooks_see_prompt_then_generated_positions(tiny_llama: LoadedModel) -> None:
    phases = []

    def record(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        phase = current_phase()
        phases.append((phase.prompt, phase.step, output.shape[1]))

    handle = tiny_llama.adapter.query(0).module.register_forward_hook(record)
    try:
        generate(tiny_llama, PROMPTS, Decoding(max_new_tokens=4, greedy=True))
    finally:
        handle.remove()
    prompt = [p for p in phases if p[0]]
    steps = phases[len(prompt) :]
    assert prompt and all(s == 0 for _, s, _ in prompt)  # the shared prefix, then the rest
    assert steps == [(False, k, 1) for k in range(1, len(steps) + 1)] and len(steps) == 3
    assert current_phase() is None


def test_stops_at_end_token(tiny_llama: LoadedModel) -> None:
    """With the end token forced to be likeliest, every row ends after zero new tokens."""
    eos = tiny_llama.tokenizer.eos_token_id
    head = tiny_llama.model.get_output_embeddings()

    def force_eos(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        boosted = output.clone()
        boosted[..., eos] += 1e4
        return boosted

    handle = head.register_forward_hook(force_eos)
    try:
        out = generate(tiny_llama, PROMPTS, Decoding(max_new_tokens=8))
    finally:
        handle.remove()
    assert all(g.finished and g.n_tokens == 0 and g.text == "" for g in out)


def test_prompt_pass_sees_every_prompt_position_and_the_cue(tiny_llama: LoadedModel) -> None:
    cue = "Follow-up question:"
    with read_site(tiny_llama.adapter.query(0)) as captured:  # one prompt pass: no reuse
        generate(tiny_llama, PROMPTS, Decoding(max_new_tokens=3, greedy=True), cue=cue, reuse=False)
    rendered = [render_prompt(tiny_llama, p, cue) for p in PROMPTS]
    assert all(text.endswith("<|im_start|>assistant\n" + cue) for text in rendered)
    longest = max(
        len(tiny_llama.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in rendered
    )
    assert captured[0].shape[:2] == (2, longest)


def test_stop_rule_ends_a_row_early_and_cuts_its_text(tiny_llama: LoadedModel) -> None:
    """A row stops as soon as its text reaches the stop text; the other rows go on."""
    decoding = Decoding(max_new_tokens=24, temperature=1.0, top_p=1.0)
    free = generate(tiny_llama, PROMPTS, decoding, seeds=[5, 6])
    marker = free[0].text[:6]  # what the first row writes first, with these seeds
    stopped = generate(tiny_llama, PROMPTS, decoding, seeds=[5, 6], stop=StopRule(after=(marker,)))
    assert stopped[0].finished and stopped[0].n_tokens < free[0].n_tokens
    assert stopped[0].text == marker.strip()
    if marker not in free[1].text:
        assert stopped[1].text == free[1].text  # the other row was not cut


def test_stop_rule_cut() -> None:
    rule = StopRule(after=("?",), before=("\n", "Student's answer"))
    assert rule.cut(" What is x? And y?") == (" What is x?", True)
    assert rule.cut("\nWhat is x\nStudent's answer: 4") == ("\nWhat is x", True)
    assert rule.cut("Student's answer: 4") == ("", True)
    assert rule.cut("no stop here") == ("no stop here", False)


def test_a_hook_can_take_a_gradient_step_during_generation(tiny_llama: LoadedModel) -> None:
    """Generation runs under no_grad, not inference_mode, so a steering hook may switch
    gradients on and optimize something of its own (as gradient-based SAE steering does)."""
    steps = []

    def edit(query: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            delta = torch.zeros_like(query, requires_grad=True)
            loss = ((query + delta - 1.0) ** 2).mean()
            (grad,) = torch.autograd.grad(loss, delta)
        steps.append(float(grad.abs().sum()))
        return query - 0.1 * grad

    with replace_site(tiny_llama.adapter.query(0), edit):  # 2 prompt passes, 2 decode steps
        generate(tiny_llama, PROMPTS, Decoding(max_new_tokens=3, greedy=True))
    assert len(steps) == 4 and all(s > 0 for s in steps)
