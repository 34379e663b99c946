"""The project's own Bloom data, the tasks and instructions, and their loaders."""

from bench.data.levels import LEVELS, Level, parse_level
from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS, Message, Task

__all__ = [
    "LEVELS",
    "TASKS",
    "Level",
    "Message",
    "Scenario",
    "Task",
    "load_scenarios",
    "parse_level",
]
