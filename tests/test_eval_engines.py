"""The evaluation engines: identical outcomes on any engine and worker count; crashes and hangs contained."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from robocell.eval.run import EvalPlan, run_plan
from robocell.eval.trial import EvalTarget

from tests.conftest import TABLETOP

CHAOS_DIR = Path(__file__).parent / "chaos_skills"
CHAOS_SEED = 2  # 8 trials from seed 2 give ok, failed, exit, segfault and hang trials (_check_fates)
TIMEOUT = 8.0  # s; a healthy chaos trial takes well under 1 s


def _chaos_plan(workers: int, engine: str = "local", hang: bool = True) -> EvalPlan:
    target = EvalTarget.parse(["chaos", f"hang={str(hang).lower()}"])
    return EvalPlan(target, str(TABLETOP), trials=8, seed=CHAOS_SEED, workers=workers, engine=engine,
                    timeout=TIMEOUT, skill_dirs=(str(CHAOS_DIR),))


@pytest.fixture(scope="module")
def local_chaos_run():
    return run_plan(_chaos_plan(workers=2))


def _check_fates(report) -> None:
    """Every trial is accounted for, and each fate of the chaos skill shows up as what it is."""
    assert [t.trial for t in report.trials] == list(range(8))
    kinds = {t.trial: (t.status, t.error_type) for t in report.trials}
    assert ("ok", None) in kinds.values()
    assert ("failed", "SkillFailed") in kinds.values()
    assert ("error", "TrialTimeout") in kinds.values()
    crashed = [t for t in report.trials if t.error == "the worker process crashed"]
    assert len(crashed) >= 2 and all(t.status == "error" for t in crashed)
    for t in report.trials:
        if t.status == "failed":
            assert "too far out" in t.error and t.step == "1 chaos(hang=True)"
        if t.error_type == "TrialTimeout":
            assert t.error == f"timed out after {TIMEOUT:g} s; the worker was killed"
            assert t.wall_time >= TIMEOUT


def test_local_engine_contains_crashes_and_hangs(local_chaos_run) -> None:
    _check_fates(local_chaos_run)
    kinds = {t.error_type for t in local_chaos_run.trials}
    assert "WorkerCrashed (exit code 3)" in kinds  # os._exit(3)
    assert "WorkerCrashed (killed by signal SIGSEGV)" in kinds  # a real segmentation fault


def test_outcomes_do_not_depend_on_the_worker_count() -> None:
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
def test_ray_engine_gives_the_same_outcomes(local_chaos_run) -> None:
    report = run_plan(_chaos_plan(workers=2, engine="ray"))
    _check_fates(report)
    assert [t.outcome() for t in report.trials] == [t.outcome() for t in local_chaos_run.trials]
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()  # the local cluster was shut down


def test_ray_engine_without_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from robocell.eval.engines.ray import RayEngine
    from robocell.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'robocell\[ray\]'"):
        RayEngine(2, 10.0).run([])
