"""robocell.skills: the skill library, skill programs and the skill registry.

Skills talk to arms only through the core contracts (never pybullet or zmq).
"""

from __future__ import annotations

from robocell.skills.context import SkillContext, Skills
from robocell.skills.program import Program, ProgramResult, Step
from robocell.skills.registry import (
    FrameName,
    ObjectName,
    Pose,
    SkillRegistry,
    SkillSpec,
    TargetName,
    skill,
)

__all__ = [
    "FrameName", "ObjectName", "Pose", "Program", "ProgramResult", "SkillContext", "SkillRegistry",
    "SkillSpec", "Skills", "Step", "TargetName", "skill",
]
