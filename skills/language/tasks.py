"""Named tasks taught by language, stored as YAML files in the skill library.

``<library>/tasks/<name>.yaml``::

    version: 1
    name: tidy
    definition: put all the blocks in the bin     # re-read against the cell it runs in
    phrasings: [tidy up, tidy]                     # what operators say for it
    cell: tabletop                                 # the cell it was taught and previewed on
    program: {version: 1, name: tidy, steps: [...]}  # the program it meant there
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robocell.errors import ConfigError
from robocell.cellfile.yamlio import dump_yaml, load_yaml

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
DEFAULT_LIBRARY = Path("library")


@dataclass
class Task:
    name: str
    definition: str
    phrasings: list[str] = field(default_factory=list)
    cell: str | None = None
    program: dict[str, Any] | None = None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": 1, "name": self.name, "definition": self.definition,
                                "phrasings": list(self.phrasings)}
        if self.cell:
            data["cell"] = self.cell
        if self.program:
            data["program"] = self.program
        return data


class TaskLibrary:
    """The named tasks of one library folder."""

    def __init__(self, folder: str | Path = DEFAULT_LIBRARY) -> None:
        self.folder = Path(folder)
        self.tasks_dir = self.folder / "tasks"

    def path(self, name: str) -> Path:
        return self.tasks_dir / f"{check_name(name)}.yaml"

    def names(self) -> list[str]:
        if not self.tasks_dir.is_dir():
            return []
        return sorted(p.stem for p in self.tasks_dir.glob("*.yaml"))

    def all(self) -> list[Task]:
        return [self.get(n) for n in self.names()]

    def get(self, name: str) -> Task:
        path = self.path(name)
        if not path.is_file():
            raise ConfigError(
                f"no task named '{name}' in {self.tasks_dir}; the tasks are: {', '.join(self.names()) or '(none)'}"
                " (teach one with: robocell teach \"PHRASE\" --name NAME --as \"WHAT TO DO\" --cell CELL)"
            )
        try:
            data = load_yaml(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"task file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("definition"), str):
            raise ConfigError(f"task file {path}: expected a mapping with a 'definition' text; fix or delete it")
        phrasings = data.get("phrasings") or []
        if not isinstance(phrasings, list) or not all(isinstance(p, str) for p in phrasings):
            raise ConfigError(f"task file {path}: 'phrasings' must be a list of texts, got {phrasings!r}")
        return Task(name=name, definition=data["definition"], phrasings=phrasings, cell=data.get("cell"),
                    program=data.get("program"))

    def save(self, task: Task, *, replace: bool = True) -> Path:
        path = self.path(task.name)
        if path.exists() and not replace:
            raise ConfigError(f"a task named '{task.name}' exists already ({path}); rename or delete it first")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(task.to_data()))
        return path

    def rename(self, old: str, new: str) -> Task:
        task = self.get(old)
        if self.path(new).exists():
            raise ConfigError(f"cannot rename '{old}' to '{new}': a task named '{new}' exists already")
        task.name = new
        if task.program is not None:
            task.program = {**task.program, "name": new}
        self.save(task)
        self.path(old).unlink()
        return task

    def delete(self, name: str) -> None:
        self.get(name)  # a clear message when it does not exist
        self.path(name).unlink()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"task name '{name}' is not allowed: use 1-64 lower-case letters, digits and '_', starting with a "
            "letter (e.g. tidy_up)"
        )
    return name
