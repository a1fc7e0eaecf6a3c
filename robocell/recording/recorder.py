"""Record a :class:`~robocell.recording.demonstration.Demonstration` from any backend.

    with record(cell, rate=100.0, source="script:demo.py", cell_file="cell.yaml") as rec:
        ...  # the arm moves: a script, teleoperation, free-drive on the pendant
    rec.demonstration().save("demo.npz")

How samples are taken is the backend's business (core imports neither the
simulator nor the ZeroMQ client): a backend offers the optional
``open_sampler`` hook documented in :class:`robocell.core.backends.Backend`.  The
simulator samples inside its stepping loop every k physics steps (simulated
time, deterministic); a remote arm is sampled by a thread with its own
observe-only connection that decimates the server's state stream on the
server's clock.  Samples go into preallocated chunks, so a sample costs a few
array writes and the sampling thread never falls behind for bookkeeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import numpy as np
from spatialmath import SE3

from robocell.core.capabilities import Samples
from robocell.recording.demonstration import MIN_SAMPLES, Demonstration, Provenance, arm_model_name, file_sha256, iso_now
from robocell.errors import BackendError, ConfigError, DemoError

if TYPE_CHECKING:
    from robocell.core.cell import Cell

MAX_RATE = 1000.0  # Hz: the fastest state stream a robocell server publishes
CHUNK = 2048  # samples per buffer chunk (20 s at 100 Hz; ~270 kB for a 7-joint arm)


class SampleSink(Protocol):
    def __call__(self, t: float, q: Sequence[float], tcp: Sequence[float] | np.ndarray, width: float,
                 grasped: bool) -> None: ...


class Sampler(Protocol):
    """What ``backend.open_sampler`` returns."""

    rate: float  # Hz the samples actually come at (>= the rate asked for)
    lost: int  # periods of the backend's clock that passed without a sample

    def close(self) -> None:
        """Stop sampling; raise the error that ended sampling early, if any."""
        ...


class SampleBuffer:
    """Samples in preallocated chunks: appending writes rows, it never builds per-sample objects."""

    def __init__(self, n_joints: int, chunk: int = CHUNK) -> None:
        self.n_joints = n_joints
        self.chunk = chunk
        self._done: list[tuple[np.ndarray, ...]] = []  # full chunks
        self._n_done = 0
        self._new_chunk()

    def _new_chunk(self) -> None:
        c, n = self.chunk, self.n_joints
        self._t = np.empty(c)
        self._q = np.empty((c, n))
        self._tcp = np.empty((c, 16))
        self._w = np.empty(c)
        self._g = np.empty(c, dtype=bool)
        self._i = 0

    def append(self, t: float, q: Sequence[float], tcp: Sequence[float] | np.ndarray, width: float,
               grasped: bool) -> None:
        i = self._i
        if i == self.chunk:
            self._done.append((self._t, self._q, self._tcp, self._w, self._g))
            self._n_done += self.chunk
            self._new_chunk()
            i = 0
        self._t[i] = t
        self._q[i] = q
        self._tcp[i] = np.reshape(tcp, 16) if isinstance(tcp, np.ndarray) else tcp
        self._w[i] = width
        self._g[i] = grasped
        self._i = i + 1

    def __len__(self) -> int:
        return self._n_done + self._i

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t, q, tcp (N, 4, 4), width, grasped), copies of the samples so far."""
        parts = [*self._done, (self._t[:self._i], self._q[:self._i], self._tcp[:self._i], self._w[:self._i],
                               self._g[:self._i])]
        t, q, tcp, w, g = (np.concatenate([p[k] for p in parts]) for k in range(5))
        return t, q, tcp.reshape(-1, 4, 4), w, g


def check_rate(rate: float) -> float:
    """The rate as a float, or ConfigError saying the allowed range."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ConfigError(f"recording rate {rate!r} is not a number; give Hz, e.g. 100") from None
    if not (math.isfinite(r) and 0.0 < r <= MAX_RATE):
        raise ConfigError(f"recording rate = {rate!r} Hz must be in (0, {MAX_RATE:g}] Hz; "
                          "100 Hz is plenty for learning a skill")
    return r


class Recording:
    """One recording; a context manager (``record`` makes one).  Not reusable."""

    def __init__(self, cell: Cell, arm: str | None = None, rate: float = 100.0, source: str = "script",
                 cell_file: str | Path | None = None) -> None:
        self.rate = check_rate(rate)
        self.cell = cell
        self.arm = cell.arm(arm)  # ConfigError naming the cell's arms if unknown
        self.source = source
        self.cell_file = str(cell_file) if cell_file is not None else ""
        self.buffer = SampleBuffer(len(self.arm.joint_names))
        self.sampler: Sampler | None = None
        self.objects: dict[str, SE3] = {}
        self.objects_end: dict[str, SE3] | None = None
        self.started_wall = 0.0
        self.wall_time = 0.0  # s of wall clock between start and stop
        self._stopped = False

    # ---- lifecycle -----------------------------------------------------------------
    def start(self) -> Recording:
        if self.sampler is not None or self._stopped:
            raise DemoError("this recording was already started; make a new one with record(...)")
        if not isinstance(self.cell.backend, Samples):
            raise BackendError(f"backend '{self.cell.address}' cannot record demonstrations "
                               "(it has no open_sampler hook; see robocell.core.backends.Backend)")
        self.objects = self._object_poses()
        self.started_wall = time.perf_counter()
        self.sampler = self.cell.backend.open_sampler(self.arm.name, self.rate, self.buffer.append)
        return self

    def stop(self) -> None:
        """Stop sampling and note where the objects ended; idempotent."""
        if self._stopped or self.sampler is None:
            self._stopped = True
            return
        self._stopped = True
        self.wall_time = time.perf_counter() - self.started_wall
        self.sampler.close()  # raises what ended sampling early (connection lost, ...)
        self.objects_end = self._object_poses()

    def __enter__(self) -> Recording:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.stop()
            return
        try:
            self.stop()
        except Exception as stop_exc:  # noqa: BLE001 - the body's error propagates; this one is noted on it
            exc.add_note(f"stopping the recording failed too: {type(stop_exc).__name__}: {stop_exc}")

    # ---- results ---------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return len(self.buffer)

    @property
    def sample_rate(self) -> float:
        """Hz the backend's sampler delivers (the simulator rounds up to a whole number of steps)."""
        return self.sampler.rate if self.sampler is not None else self.rate

    @property
    def lost_samples(self) -> int:
        """Periods (of ``1 / sample_rate`` on the backend's clock) that passed without a sample.

        Each sample lies somewhere inside its period, so two neighbours may be up to two
        periods apart without anything lost; that is why this counts periods, not gaps.
        """
        return int(self.sampler.lost) if self.sampler is not None else 0

    def demonstration(self) -> Demonstration:
        """The recorded demonstration (stops the recording if it still runs)."""
        self.stop()
        n = len(self.buffer)
        if n < MIN_SAMPLES:
            hint = ("in simulation time passes only while the arm moves or the script waits"
                    if self.cell.address == "sim" else "did the state stream stop?")
            raise DemoError(f"the recording has {n} samples; a demonstration needs at least {MIN_SAMPLES} "
                            f"({MIN_SAMPLES / self.rate:.2f} s at {self.rate:g} Hz); nothing was recorded "
                            f"long enough ({hint})")
        if self.objects_end is None:
            raise DemoError("the recording stopped without the objects' final poses; record it again")
        t, q, tcp, width, grasped = self.buffer.arrays()
        spec = self.cell.spec
        cell_file = self.cell_file
        prov = Provenance(
            cell=spec.name, arm=self.arm.name, arm_model=arm_model_name(spec, self.arm.name),
            joint_names=tuple(self.arm.joint_names), date=iso_now(), source=self.source,
            backend=self.cell.address, robocell_version=_version(), rate=self.rate,
            cell_file=cell_file, cell_sha256=file_sha256(cell_file) if cell_file else "",
        )
        fixtures = {fx.name: fx.pose.se3() for fx in spec.fixtures}
        return Demonstration(t=t - t[0], q=q, tcp=tcp, gripper_width=width, grasped=grasped,
                             objects=dict(self.objects), objects_end=dict(self.objects_end),
                             fixtures=fixtures, provenance=prov)

    def _object_poses(self) -> dict[str, SE3]:
        return {name: self.cell.object_pose(name) for name in self.cell.objects}


def record(cell: Cell, arm: str | None = None, rate: float = 100.0, source: str = "script",
           cell_file: str | Path | None = None) -> Recording:
    """A recording of ``arm`` (default: the cell's only arm) at ``rate`` Hz; use it as a context manager."""
    return Recording(cell, arm, rate, source, cell_file)


def _version() -> str:
    from robocell import __version__

    return __version__


__all__ = ["MAX_RATE", "Recording", "SampleBuffer", "Sampler", "SampleSink", "check_rate", "record"]
