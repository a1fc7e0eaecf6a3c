"""The ``ray`` evaluation engine: trials fanned out on Ray actors.

Joins an existing cluster (``--address ray://head:10001`` or ``auto``) or,
without an address, starts a local one with ``num_cpus = workers``.  The
design mirrors the local engine: ``workers`` long-lived actors (one process
each, robocell imported once), a trial sent only to a warm, idle actor, so the
per-trial timeout measures the trial and not a cold start or queueing.  An
actor that dies is reported as an error for its trial and replaced (no
restarts, no retries: a crash must be seen, not hidden); an actor over its
timeout is killed and replaced.

Every node needs robocell installed and the cell, program and skill files at
the same absolute paths (a shared filesystem, or the same checkout on every
node).  Ray is an optional extra: ``pip install 'robocell[ray]'``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from robocell.errors import ConfigError, EvaluationError
from robocell.eval.evaluate import TrialResult
from robocell.eval.trial import TrialJob, check_engine_options

READY_TIMEOUT = 120.0  # s for a new worker to import robocell


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray, an optional extra: pip install 'robocell[ray]' "
                          "(or use --engine local)") from None
    return ray


class _TrialActor:
    """One long-lived Ray worker process that runs trials one at a time (made remote lazily)."""

    def __init__(self) -> None:
        import robocell.eval.engines.preload  # noqa: F401  (PyBullet, kinematics and skills, once per worker)

    def ready(self) -> int:
        return os.getpid()

    def run(self, job: TrialJob) -> TrialResult:
        from robocell.eval.trial import execute

        return execute(job)


class _Slot:
    """An actor and what it is doing: starting (ready ref), idle, or running one job."""

    def __init__(self, actor: Any, ready_ref: Any) -> None:
        self.actor = actor
        self.ref = ready_ref
        self.job: TrialJob | None = None
        self.since = time.monotonic()
        self.ready = False


class RayEngine:
    """Runs trial jobs as Ray tasks, ``workers`` at a time, with a per-trial ``timeout`` (s)."""

    def __init__(self, workers: int, timeout: float, address: str | None = None) -> None:
        check_engine_options(workers, timeout)
        self.workers = workers
        self.timeout = timeout
        self.address = address
        self.startup_s = 0.0  # time to start or join the cluster (reported by the benchmark)

    def run(self, jobs: Iterable[TrialJob], on_result: Callable[[TrialResult], None] | None = None) -> list[TrialResult]:
        ray = _ray()
        t0 = time.perf_counter()
        started_here = self._connect(ray)
        self.startup_s = time.perf_counter() - t0
        try:
            return self._run(ray, [j.absolute() for j in jobs], on_result)
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        if ray.is_initialized():
            return False
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level="warning")
            else:
                # Ray starts its workers at niceness 15; on a busy host they then get a few percent
                # of a core, and healthy trials hit their timeout (an import took 100 s, a trial 8 s
                # with two CPU-bound processes running). The local engine's workers run at the
                # caller's priority, and so do the workers of a cluster started here.
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                         logging_level="warning", _system_config={"worker_niceness": 0})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
            raise EvaluationError(f"could not start or join {where}: {exc}; check --address "
                                  "(e.g. ray://head:10001 or auto) or drop it to start a local cluster") from exc
        return True

    def _run(self, ray: Any, jobs: list[TrialJob], on_result: Callable[[TrialResult], None] | None) -> list[TrialResult]:
        """Like the local engine: a trial is sent only to a warm actor, so its clock measures the trial.

        Long on purpose: one scheduling loop over the worker slots, whose states (starting, ready,
        running, finished, dead, hung) and their transitions read best side by side.
        """
        from ray.exceptions import GetTimeoutError, RayActorError, RayError

        actor_cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_TrialActor)
        queue = list(reversed(jobs))
        results: list[TrialResult] = []
        start_failures = 0

        def spawn() -> _Slot:
            actor = actor_cls.remote()
            return _Slot(actor, actor.ready.remote())

        def emit(r: TrialResult) -> None:
            results.append(r)
            if on_result:
                on_result(r)

        slots = [spawn() for _ in range(min(self.workers, len(queue)))]
        try:
            while queue or any(s.job is not None for s in slots):
                for s in slots:
                    if s.ready and s.job is None and queue:
                        s.job, s.since = queue.pop(), time.monotonic()
                        s.ref = s.actor.run.remote(s.job)
                refs = [s.ref for s in slots if s.ref is not None]
                if not refs:
                    raise EvaluationError("the Ray engine has no worker left with trials still to run")
                done, _ = ray.wait(refs, num_returns=1, timeout=self._wait_time(slots))
                done_set = set(done)
                now = time.monotonic()
                keep: list[_Slot] = []
                for s in slots:
                    dead = False
                    if s.ref is not None and s.ref in done_set:
                        ref, s.ref = s.ref, None
                        try:
                            value = ray.get(ref)
                        except (RayActorError, GetTimeoutError):
                            dead = True
                        except RayError as exc:  # the call failed in a way execute() could not catch
                            dead = True
                            if s.job is not None:
                                job, s.job = s.job, None
                                emit(TrialResult(job.trial, job.seed, False,
                                                 f"Ray task failed: {str(exc).strip().splitlines()[0]}", 0.0,
                                                 now - s.since, error_type=type(exc).__name__, is_error=True))
                        else:
                            if s.ready:
                                s.job = None
                                emit(value)
                            else:
                                s.ready, start_failures = True, 0
                    limit = self.timeout if s.ready else READY_TIMEOUT
                    hung = not dead and s.ref is not None and now - s.since > limit
                    if not dead and not hung:
                        keep.append(s)
                        continue
                    ray.kill(s.actor, no_restart=True)
                    if s.job is not None:
                        job, s.job = s.job, None
                        error, kind = (("timed out after {:g} s; the worker was killed".format(self.timeout),
                                        "TrialTimeout") if hung else ("the worker process crashed", "WorkerCrashed"))
                        emit(TrialResult(job.trial, job.seed, False, error, 0.0, now - s.since,
                                         error_type=kind, is_error=True))
                    elif not s.ready:
                        start_failures += 1
                        if start_failures >= 3:
                            raise EvaluationError(
                                "3 Ray workers in a row died or hung while importing robocell; every node needs "
                                "robocell installed (pip install 'robocell[ray]'); run one trial with --trial 0")
                    if queue:
                        keep.append(spawn())
                slots = keep
        finally:
            for s in slots:
                ray.kill(s.actor, no_restart=True)
        return sorted(results, key=lambda r: r.trial)

    def _wait_time(self, slots: list[_Slot]) -> float:
        now = time.monotonic()
        deadlines = [s.since + (self.timeout if s.ready else READY_TIMEOUT) for s in slots if s.ref is not None]
        return max(0.0, min(deadlines, default=now + 1.0) - now) + 0.01


__all__ = ["RayEngine"]
