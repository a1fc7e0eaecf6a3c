"""The ``local`` evaluation engine: a pool of worker processes on this machine.

Not ``concurrent.futures``: a pool there cannot kill one hung task, and one
crashed worker breaks the whole pool.  Here each worker has its own pipe and
runs one trial at a time; the parent waits on every pipe and every process
sentinel with the nearest deadline as timeout.  A worker that dies (segfault,
``os._exit``) or overruns the per-trial timeout is killed and replaced, its
trial is reported as an error, and the run goes on.

Workers come from the ``forkserver`` context: PyBullet and threads are not
fork-safe, but a fork server that only preloaded the modules (no physics
client, no threads) is, and it makes a replacement worker start in
milliseconds instead of re-importing everything.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from robocell.errors import EvaluationError
from robocell.eval.evaluate import TrialResult
from robocell.eval.trial import TrialJob, check_engine_options

#: modules the fork server imports once, so each worker starts with them loaded
PRELOAD = ["robocell.eval.engines.preload"]
READY_TIMEOUT = 120.0  # s for a new worker to import robocell and say it is ready
MAX_START_FAILURES = 3  # workers in a row that die before being ready: give up


def _context() -> Any:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: TrialJob | None = None
    started: float = 0.0
    ready: bool = False
    born: float = 0.0
    broken: bool = False  # a send to it failed: its process is gone


class LocalEngine:
    """Runs trial jobs on ``workers`` processes with a per-trial ``timeout`` (s)."""

    def __init__(self, workers: int, timeout: float) -> None:
        check_engine_options(workers, timeout)
        self.workers = workers
        self.timeout = timeout
        self._ctx = _context()

    def run(self, jobs: Iterable[TrialJob], on_result: Callable[[TrialResult], None] | None = None) -> list[TrialResult]:
        queue = deque(j.absolute() for j in jobs)
        results: list[TrialResult] = []

        def emit(r: TrialResult) -> None:
            results.append(r)
            if on_result:
                on_result(r)

        pool: list[_Worker] = [self._spawn() for _ in range(min(self.workers, len(queue)))]
        start_failures = 0
        try:
            while queue or any(w.job is not None for w in pool):
                for w in pool:
                    if w.ready and w.job is None and queue:
                        w.job, w.started = queue.popleft(), time.monotonic()
                        try:
                            w.conn.send(w.job)
                        except OSError:  # it died since it said ready: reported as a crash below
                            w.broken = True
                ready = wait([w.conn for w in pool] + [w.process.sentinel for w in pool], self._wait_time(pool))
                now = time.monotonic()
                keep: list[_Worker] = []
                for w in pool:
                    was_ready = w.ready
                    msg = self._collect(w, ready)
                    if w.ready and not was_ready:
                        start_failures = 0
                    if isinstance(msg, TrialResult):
                        emit(msg)
                    hung = w.job is not None and now - w.started > self.timeout
                    stuck = not w.ready and now - w.born > READY_TIMEOUT
                    if msg is not _DEAD and not w.broken and not hung and not stuck:
                        keep.append(w)
                        continue
                    if not w.ready:
                        start_failures += 1
                    failure = self._retire(w, hung)
                    if failure is not None:
                        emit(failure)
                    if start_failures >= MAX_START_FAILURES:
                        raise EvaluationError(
                            f"{start_failures} worker processes in a row died while starting "
                            f"({_exit_text(w.process.exitcode)}); run one trial alone with --trial 0 to see why")
                    if queue:
                        keep.append(self._spawn())
                pool = keep
        finally:
            for w in pool:
                self._stop(w)
        return sorted(results, key=lambda r: r.trial)

    # ---- workers ------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        from robocell.eval.engines.worker import serve

        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=serve, args=(child,), daemon=True, name="robocell-trial-worker")
        process.start()
        child.close()  # the parent keeps only its end, so EOF tells it the worker died
        return _Worker(process, parent, born=time.monotonic())

    def _collect(self, w: _Worker, ready: list[Any]) -> Any:
        if w.conn not in ready and w.process.sentinel not in ready:
            return None
        try:
            if not w.conn.poll():
                return _DEAD if not w.process.is_alive() else None
            msg = w.conn.recv()
        except (EOFError, OSError):
            return _DEAD
        if msg == "ready":
            w.ready = True
            return None
        w.job = None
        return msg

    def _retire(self, w: _Worker, hung: bool) -> TrialResult | None:
        """Kill a dead, hung or stuck worker; its trial (if any) becomes an error result."""
        now = time.monotonic()
        self._stop(w, kill=True)
        if w.job is None:
            return None
        job, w.job = w.job, None
        if hung:
            error, kind = f"timed out after {self.timeout:g} s; the worker was killed", "TrialTimeout"
        else:
            # the exit code goes in error_type: the error text must read the same on every engine
            error, kind = "the worker process crashed", f"WorkerCrashed ({_exit_text(w.process.exitcode)})"
        return TrialResult(job.trial, job.seed, False, error, 0.0, now - w.started,
                           error_type=kind, is_error=True)

    def _wait_time(self, pool: list[_Worker]) -> float:
        now = time.monotonic()
        deadlines = [w.started + self.timeout for w in pool if w.job is not None]
        deadlines += [w.born + READY_TIMEOUT for w in pool if not w.ready]
        return max(0.0, min(deadlines, default=now + 1.0) - now) + 0.01

    @staticmethod
    def _stop(w: _Worker, kill: bool = False) -> None:
        if w.process.is_alive() and not kill:
            try:
                w.conn.send(None)  # polite: finish and exit
            except OSError:
                pass  # the pipe is already gone: the kill below ends it
            w.process.join(timeout=2.0)
        if w.process.is_alive():
            w.process.kill()
        w.process.join(timeout=5.0)
        w.conn.close()


_DEAD = object()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


__all__ = ["LocalEngine", "available_cpus"]
