"""The ``ray`` evaluation engine: trials fanned out as Ray tasks.

Joins an existing cluster (``--address ray://head:10001`` or ``auto``) or,
without an address, starts a local one with ``num_cpus = workers``.  At most
``workers`` trials are in flight, so the per-trial timeout measures running
time, not queueing.  A trial whose worker dies is reported as an error
(``max_retries=0``: a crash must be seen, not hidden by a retry); a trial
over its timeout is cancelled with ``force=True``, which kills its worker.

Every node needs robocell installed and the cell, program and skill files at
the same absolute paths (a shared filesystem, or the same checkout on every
node).  Ray is an optional extra: ``pip install 'robocell[ray]'``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from robocell.errors import ConfigError, EvaluationError
from robocell.evaluate import TrialResult
from robocell.trial import TrialJob


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray, an optional extra: pip install 'robocell[ray]' "
                          "(or use --engine local)") from None
    return ray


def _absolute(job: TrialJob) -> TrialJob:
    """Workers may run in another folder (or on another node): give them absolute paths."""
    t = job.target
    target = replace(t, path=os.path.abspath(t.path)) if t.path else t
    return replace(job, target=target, cell=os.path.abspath(job.cell),
                   skill_dirs=tuple(os.path.abspath(d) for d in job.skill_dirs),
                   picture_dir=os.path.abspath(job.picture_dir) if job.picture_dir else None,
                   record=os.path.abspath(job.record) if job.record else None)


def _warm() -> int:
    import robocell.trial  # noqa: F401  (imports PyBullet, kinematics and skills once per worker)

    return os.getpid()


def _execute(job: TrialJob) -> TrialResult:
    from robocell.trial import execute

    return execute(job)


class RayEngine:
    """Runs trial jobs as Ray tasks, ``workers`` at a time, with a per-trial ``timeout`` (s)."""

    def __init__(self, workers: int, timeout: float, address: str | None = None) -> None:
        if workers < 1:
            raise ConfigError(f"--workers {workers}: must be at least 1")
        if not timeout > 0:
            raise ConfigError(f"--timeout {timeout}: must be > 0 s")
        self.workers = workers
        self.timeout = timeout
        self.address = address
        self.startup_s = 0.0  # time to start or join the cluster (reported by the benchmark)

    def run(self, jobs: Iterable[TrialJob], on_result: Callable[[TrialResult], None] | None = None) -> list[TrialResult]:
        ray = _ray()
        t0 = time.perf_counter()
        started_here = self._connect(ray)
        try:
            # import robocell in every worker before the clock of any trial starts, as the
            # local engine's workers do before they say "ready"
            warm = ray.remote(num_cpus=1, max_retries=0)(_warm)
            ray.get([warm.remote() for _ in range(self.workers)], timeout=120)
        except ray.exceptions.RayError as exc:
            if started_here:
                ray.shutdown()
            raise EvaluationError(f"Ray workers could not import robocell within 120 s: {exc}; every node needs "
                                  "robocell installed (pip install 'robocell[ray]')") from exc
        self.startup_s = time.perf_counter() - t0
        try:
            return self._run(ray, [_absolute(j) for j in jobs], on_result)
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
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                         logging_level="warning")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
            raise EvaluationError(f"could not start or join {where}: {exc}; check --address "
                                  "(e.g. ray://head:10001 or auto) or drop it to start a local cluster") from exc
        return True

    def _run(self, ray: Any, jobs: list[TrialJob], on_result: Callable[[TrialResult], None] | None) -> list[TrialResult]:
        remote = ray.remote(num_cpus=1, max_retries=0)(_execute)
        queue = list(reversed(jobs))
        running: dict[Any, tuple[TrialJob, float]] = {}
        results: list[TrialResult] = []

        def emit(r: TrialResult) -> None:
            results.append(r)
            if on_result:
                on_result(r)

        while queue or running:
            while queue and len(running) < self.workers:
                job = queue.pop()
                running[remote.remote(job)] = (job, time.monotonic())
            now = time.monotonic()
            wait_s = max(0.0, min(t + self.timeout for _, t in running.values()) - now) + 0.01
            done, _ = ray.wait(list(running), num_returns=1, timeout=wait_s)
            for ref in done:
                job, started = running.pop(ref)
                emit(self._get(ray, ref, job, started))
            now = time.monotonic()
            for ref, (job, started) in list(running.items()):
                if now - started > self.timeout:
                    ray.cancel(ref, force=True)  # kills the worker process running it
                    running.pop(ref)
                    emit(TrialResult(job.trial, job.seed, False,
                                     f"timed out after {self.timeout:g} s; the worker was killed", 0.0,
                                     now - started, error_type="TrialTimeout", is_error=True))
        return sorted(results, key=lambda r: r.trial)

    @staticmethod
    def _get(ray: Any, ref: Any, job: TrialJob, started: float) -> TrialResult:
        from ray.exceptions import RayError, WorkerCrashedError

        try:
            result: TrialResult = ray.get(ref)
            return result
        except WorkerCrashedError:
            error = "the worker process crashed"
            kind = "WorkerCrashed"
        except RayError as exc:  # the task failed in a way execute() could not catch
            error, kind = f"Ray task failed: {str(exc).strip().splitlines()[0]}", type(exc).__name__
        return TrialResult(job.trial, job.seed, False, error, 0.0, time.monotonic() - started,
                           error_type=kind, is_error=True)


__all__ = ["RayEngine"]
