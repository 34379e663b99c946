"""The project's own Bloom data and its loaders."""

from bench.data.levels import LEVELS, Level, parse_level
from bench.data.prompts import Message, feedback_messages
from bench.data.scenarios import Scenario, load_scenarios

__all__ = [
    "LEVELS",
    "Level",
    "Message",
    "Scenario",
    "feedback_messages",
    "load_scenarios",
    "parse_level",
]
