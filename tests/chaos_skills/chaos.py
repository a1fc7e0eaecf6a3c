"""Deliberately misbehaving skills for the evaluation engine's tests.

What ``chaos`` does depends on where the cell's randomisation put the red
block, so it is a pure function of the trial's seed: some trials pass,
some fail, some kill their worker process, some never return.
"""

from __future__ import annotations

import faulthandler
import os
import threading

from robocell.errors import SkillFailed
from robocell.skills import ObjectName, SkillContext, skill

# red_block's x is 0.45 m +- 0.03 m in examples/cells/tabletop.yaml
FAIL_ABOVE = 0.438
CRASH_ABOVE = 0.45
SEGFAULT_ABOVE = 0.461
HANG_ABOVE = 0.47


def chaos_kind(x: float, hang: bool = True) -> str:
    """The fate of a trial whose red block lies at ``x`` (m)."""
    if hang and x > HANG_ABOVE:
        return "hang"
    if x > SEGFAULT_ABOVE:
        return "segfault"
    if x > CRASH_ABOVE:
        return "exit"
    if x > FAIL_ABOVE:
        return "failed"
    return "ok"


@skill
def chaos(ctx: SkillContext, object: ObjectName = "red_block", hang: bool = True) -> None:
    """Succeed, fail, exit the process, segfault or hang, depending on where the object lies."""
    kind = chaos_kind(float(ctx.cell.object_pose(object).t[0]), hang)
    if kind == "failed":
        raise SkillFailed(f"chaos: '{object}' lies too far out")
    if kind == "exit":
        os._exit(3)  # a worker that dies without a word
    if kind == "segfault":
        faulthandler._sigsegv()  # a real SIGSEGV, as a crashing C extension would give
    if kind == "hang":
        threading.Event().wait()  # never set: a worker stuck forever


@skill
def buggy(ctx: SkillContext) -> None:
    """Raise an exception that is not a robocell error (a bug in a skill)."""
    raise KeyError("no such thing")
