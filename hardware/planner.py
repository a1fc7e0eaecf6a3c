"""The planner thread: runs motion planning jobs one at a time, off the command thread.

Its own small thread (not a thread pool) so the server can tell whether it still runs: a
planner that died would leave every motion command unanswered, and the server fail-stops
instead (:meth:`robocell.hardware.server.ArmServer.failure`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Planner:
    def __init__(self, name: str = "robocell-planner") -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None  # what killed the thread, if anything did
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        if not self.alive:
            fut.set_exception(RuntimeError(f"the planner thread is not running ({self.error!r})"))
            return fut
        self._jobs.put((fut, fn, args))
        return fut

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def shutdown(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fut, fn, args = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
                fut.set_exception(exc)
                continue
            except BaseException as exc:
                # not an error of one plan (SystemExit, KeyboardInterrupt...): the thread ends,
                # and the server's supervisor stops the arm and exits
                self.error = exc
                fut.set_exception(RuntimeError(f"the planner thread died: {exc!r}"))
                return
            fut.set_result(result)
