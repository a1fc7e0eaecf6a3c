"""The evaluation engines: identical outcomes on any engine and worker count; crashes and hangs contained."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from robocell.cell import Cell
from robocell.eval_run import EvalPlan, run_plan
from robocell.evaluate import trial_seeds
from robocell.trial import EvalTarget

from tests.conftest import TABLETOP

CHAOS_DIR = Path(__file__).parent / "chaos_skills"
CHAOS_SEED = 2  # 8 trials from seed 2 give ok, failed, exit, segfault and hang trials (checked below)
TIMEOUT = 8.0  # s; a healthy chaos trial takes well under 1 s


def _chaos_module():
    spec = importlib.util.spec_from_file_location("chaos_for_tests", CHAOS_DIR / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def expected_kinds() -> list[str]:
    """What each chaos trial will do, from where its seed puts the red block (read in this process)."""
    chaos = _chaos_module()
    kinds = []
    for s in trial_seeds(CHAOS_SEED, 8):
        with Cell.load(TABLETOP, seed=s) as cell:
            kinds.append(chaos.chaos_kind(float(cell.object_pose("red_block").t[0])))
    assert {"ok", "failed", "exit", "segfault", "hang"} <= set(kinds), kinds  # the test covers every fate
    return kinds


def _chaos_plan(workers: int, engine: str = "local", hang: bool = True) -> EvalPlan:
    target = EvalTarget.parse(["chaos", f"hang={str(hang).lower()}"])
    return EvalPlan(target, str(TABLETOP), trials=8, seed=CHAOS_SEED, workers=workers, engine=engine,
                    timeout=TIMEOUT, skill_dirs=(str(CHAOS_DIR),))


@pytest.fixture(scope="module")
def local_chaos_run():
    return run_plan(_chaos_plan(workers=2))


def _check_fates(report, kinds: list[str]) -> None:
    assert [t.trial for t in report.trials] == list(range(8))
    for t, kind in zip(report.trials, kinds):
        if kind == "ok":
            assert t.status == "ok", t
        elif kind == "failed":
            assert t.status == "failed" and t.error_type == "SkillFailed" and "too far out" in t.error, t
            assert t.step == "1 chaos(hang=True)"
        elif kind in ("exit", "segfault"):
            assert t.status == "error" and t.error == "the worker process crashed", t
        else:
            assert t.status == "error" and t.error_type == "TrialTimeout" and "timed out" in t.error, t


def test_local_engine_contains_crashes_and_hangs(local_chaos_run, expected_kinds: list[str]) -> None:
    _check_fates(local_chaos_run, expected_kinds)
    by_kind = {k: t for t, k in zip(local_chaos_run.trials, expected_kinds)}
    assert "exit code 3" in by_kind["exit"].error_type
    assert "SIGSEGV" in by_kind["segfault"].error_type
    counts = local_chaos_run.counts
    assert counts["ok"] == expected_kinds.count("ok")
    assert counts["error"] == sum(k in ("exit", "segfault", "hang") for k in expected_kinds)


def test_outcomes_do_not_depend_on_the_worker_count(expected_kinds: list[str]) -> None:
    one = run_plan(_chaos_plan(workers=1, hang=False))
    two = run_plan(_chaos_plan(workers=2, hang=False))
    assert [t.outcome() for t in one.trials] == [t.outcome() for t in two.trials]
    assert {t.status for t in one.trials} == {"ok", "failed", "error"}


def test_physics_outcomes_do_not_depend_on_the_worker_count() -> None:
    # real pick-and-place with perception noise large enough that some trials fail
    plan = EvalPlan(EvalTarget.parse(["pick_and_place", "object=red_block", "target=bin"]), str(TABLETOP),
                    trials=4, seed=0, randomize=("sensor_noise.object_position=0.015", "sensor_noise.object_yaw=0.3"))
    one = run_plan(plan)
    two = run_plan(EvalPlan(**{**plan.__dict__, "workers": 2}))
    assert [t.outcome() for t in one.trials] == [t.outcome() for t in two.trials]
    assert [t.sim_time for t in one.trials] == pytest.approx([t.sim_time for t in two.trials])
    assert {t.status for t in one.trials} == {"ok", "failed"}


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed: pip install 'robocell[ray]' (make test installs it)")
def test_ray_engine_gives_the_same_outcomes(local_chaos_run, expected_kinds: list[str]) -> None:
    report = run_plan(_chaos_plan(workers=2, engine="ray"))
    _check_fates(report, expected_kinds)
    assert [t.outcome() for t in report.trials] == [t.outcome() for t in local_chaos_run.trials]
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()  # the local cluster was shut down
