"""The one chat prompt every method starts from, so all methods see the same template."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from bench.data.scenarios import Scenario


class Message(TypedDict):
    """One chat turn, as `tokenizer.apply_chat_template` takes it."""

    role: str
    content: str


SYSTEM_PROMPT = "You are a helpful teacher. You give students short, specific feedback."


def feedback_messages(scenario: Scenario, instruction: str | None = None) -> list[Message]:
    """The feedback request for `scenario`; `instruction` (if any) is appended to the request."""
    request = (
        f"Subject: {scenario.subject}\n"
        f"Question: {scenario.question}\n"
        f"Student's answer: {scenario.student_answer}\n\n"
        "Write two or three sentences of feedback to the student, ending with one thing "
        "for them to do next."
    )
    if instruction:
        request = f"{request}\n{instruction}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": request},
    ]
