"""Skills learned from demonstrations: segmentation, movement primitives, the skill file, running it.

``robocell learn demo.npz --name NAME`` writes ``NAME.skill.json``; a skills
folder holding it (``--skills DIR``) makes ``NAME(object, target)`` an
ordinary skill for programs, scripts, the CLI and the language teacher.
"""

from robocell.skills.learning.learn import LearnResult, learn, load_demos
from robocell.skills.learning.model import LearnedSkill
from robocell.skills.learning.run import skill_spec

__all__ = ["LearnResult", "LearnedSkill", "learn", "load_demos", "skill_spec"]
