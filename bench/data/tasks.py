"""The generation task: what every method is asked to write, and where the text ends.

A `Task` fixes the chat prompt (system turn, the scenario block, the request), the cue that
opens the assistant's turn and the stop rule. Every method generates under the same task, so
the only differences between methods are their own instruction (prompting) or hooks.

- `question` (default): the follow-up question or task a teacher sets after the student's
  answer. It is the part of feedback that carries its cognitive level, and a text the small
  embedded model can write: the assistant's turn starts with a fixed cue and the text ends at
  the end of the question.
- `feedback`: free-form feedback ending with one thing to do next (for bigger models).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from bench.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from bench.data.scenarios import Scenario


class Message(TypedDict):
    """One chat turn, as `tokenizer.apply_chat_template` takes it."""

    role: str
    content: str


@dataclass(frozen=True)
class StopRule:
    """Where a generated text ends besides the end token; the stop text itself is dropped.

    Matches inside leading whitespace are ignored, so a text that opens with a line break is
    not cut to nothing.
    """

    after: tuple[str, ...] = ()
    """Cut just after the first of these (kept), e.g. '?' ends a question."""
    before: tuple[str, ...] = ()
    """Cut just before the first of these (dropped), e.g. a line break or an invented
    'Student's answer:' turn."""

    def cut(self, text: str) -> tuple[str, bool]:
        """The text up to the stop, and whether a stop matched."""
        start = len(text) - len(text.lstrip())
        ends = [i + len(s) for s in self.after if (i := text.find(s, start)) >= 0]
        ends += [i for s in self.before if (i := text.find(s, start)) >= 0]
        if not ends:
            return text, False
        return text[: min(ends)], True


@dataclass(frozen=True)
class Task:
    """The prompt and text unit that every method shares."""

    name: str
    """Short name, stored with every row."""
    system: str
    """The system turn."""
    request: str
    """What the user turn asks for, after the scenario block."""
    cue: str = ""
    """Text that opens the assistant's turn (generation continues after it)."""
    stop: StopRule = field(default_factory=StopRule)
    """Where the text ends besides the end token."""
    form: str = "question"
    """Which kind of exemplar text matches this task's output ('question' or 'feedback')."""

    def __post_init__(self) -> None:
        if not self.request.strip():
            raise ConfigError("task: 'request' must not be empty")
        if self.form not in FORMS:
            raise ConfigError(f"task: form must be one of {', '.join(FORMS)}, got {self.form!r}")

    def messages(self, scenario: Scenario, instruction: str | None = None) -> list[Message]:
        """The chat for `scenario`; `instruction` (a method's, if any) follows the request."""
        request = (
            f"Subject: {scenario.subject}\n"
            f"Question: {scenario.question}\n"
            f"Student's answer: {scenario.student_answer}\n\n"
            f"{self.request}"
        )
        if instruction:
            request = f"{request}\n{instruction}"
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": request},
        ]

    def finish(self, text: str) -> str:
        """A generated (or teacher-forced) text as the task keeps it: cut at the stop, trimmed."""
        return self.stop.cut(text)[0].strip()

    @property
    def fingerprint(self) -> str:
        """sha256 (16 hex) of everything that shapes a prompt or a text's end."""
        payload = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


FORMS = ("question", "feedback")

TASKS: dict[str, Task] = {
    # Chosen on dev by the control's annotated usable rate among nine wordings
    # (results/task-study/README.md): two worked examples in other subjects show the format.
    "question": Task(
        name="question",
        system=(
            "You are a helpful teacher. After a student answers, you ask one short new question "
            "that builds on their answer.\n\n"
            "Example 1:\nQuestion: What is the boiling point of water at sea level?\n"
            "Student's answer: 100 degrees Celsius.\n"
            "Follow-up question: Why does water boil at a lower temperature on top of a high "
            "mountain?\n\n"
            "Example 2:\nQuestion: Who wrote Romeo and Juliet?\n"
            "Student's answer: William Shakespeare.\n"
            "Follow-up question: Which other play of his ends with the death of both main "
            "characters?"
        ),
        request=(
            "Ask the student one short follow-up question that builds on their answer. "
            "Do not repeat the question above."
        ),
        cue="Follow-up question:",
        stop=StopRule(after=("?",), before=("\n", "Student's answer", "Student:")),
        form="question",
    ),
    "feedback": Task(
        name="feedback",
        system="You are a helpful teacher. You give students short, specific feedback.",
        request=(
            "Write two or three sentences of feedback to the student, ending with one thing "
            "for them to do next."
        ),
        form="feedback",
    ),
}
DEFAULT_TASK = "question"


def task_from_config(value: str | dict[str, Any]) -> Task:
    """A registered task by name, or a custom one from a mapping (for tuning the wording)."""
    if isinstance(value, str):
        if value not in TASKS:
            raise UnknownNameError(f"unknown task {value!r}; choose from: {', '.join(TASKS)}")
        return TASKS[value]
    if not isinstance(value, dict):
        raise ConfigError("task: give a task name or a mapping of task fields")
    fields = dict(value)
    base = task_from_config(str(fields.pop("base", DEFAULT_TASK)))
    known = set(asdict(base))
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"task: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if "stop" in fields:
        stop = fields["stop"] or {}
        try:
            fields["stop"] = StopRule(**{k: tuple(v) for k, v in stop.items()})
        except TypeError as error:
            raise ConfigError(f"task: stop: {error}") from None
    merged = {**asdict(base), **fields}
    merged["stop"] = fields.get("stop", base.stop)
    return Task(**merged)
