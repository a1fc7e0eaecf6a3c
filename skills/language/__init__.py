"""Teaching by language: prompts become typed, validated skill programs (robocell teach).

The transformer model is imported lazily: ``import robocell.skills.language``
loads neither torch nor transformers; the first :class:`Teacher` that needs the
model does.
"""

from __future__ import annotations

from robocell.skills.language.model import LanguageModel, ModelCache, default_model_dir
from robocell.skills.language.tasks import Task, TaskLibrary
from robocell.skills.language.teacher import Plan, Reading, Teacher

__all__ = ["LanguageModel", "ModelCache", "Plan", "Reading", "Task", "TaskLibrary", "Teacher",
           "default_model_dir"]
