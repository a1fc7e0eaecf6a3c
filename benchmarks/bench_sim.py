"""Simulation speed of a pick-and-place episode, against raw PyBullet in the same run.

1. robocell runs the episode (pick red_block, place in bin) on the tabletop cell:
   simulated time / wall time is the real-time factor.
2. The same episode again with every motor command PyBullet receives recorded.
3. Baseline: a fresh copy of the same scene in raw PyBullet replays exactly those
   motor commands step by step (same physics, same contacts, no robocell code).
   robocell wall time / baseline wall time is robocell's overhead.

    python benchmarks/bench_sim.py [--repeats 3] [--seed 0]

The cost of keep-out collision detection: the same episode on a cell with a keep-out
obstacle, with the check and with the obstacle's ``keep_out`` switched off (identical
physics, the contact query alone differs):

    python benchmarks/bench_sim.py --cell examples/cells/wall.yaml --target tray --keep-out-cost
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "examples" / "cells" / "tabletop.yaml"


class RecordingPyBullet:
    """Forwards to pybullet, logging motor commands with the step they preceded."""

    def __init__(self, pb: Any) -> None:
        self._pb = pb
        self.step = 0
        self.log: list[tuple[int, str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pb, name)

    def setJointMotorControlArray(self, *args: Any, **kw: Any) -> Any:  # noqa: N802 (pybullet's name)
        self.log.append((self.step, "setJointMotorControlArray", args, kw))
        return self._pb.setJointMotorControlArray(*args, **kw)

    def setJointMotorControl2(self, *args: Any, **kw: Any) -> Any:  # noqa: N802
        self.log.append((self.step, "setJointMotorControl2", args, kw))
        return self._pb.setJointMotorControl2(*args, **kw)

    def stepSimulation(self, *args: Any, **kw: Any) -> Any:  # noqa: N802
        self.step += 1
        return self._pb.stepSimulation(*args, **kw)


def load(seed: int, cell_path: Path = CELL, keep_out: bool = True) -> Any:
    """The cell with ``seed``; ``keep_out=False`` switches every fixture's keep-out check off."""
    from robocell.core.backends import create_backend
    from robocell.core.cell import Cell
    from robocell.cellfile.spec import load_cell_spec
    from robocell.cellfile.randomization import place_fixtures

    spec = place_fixtures(load_cell_spec(cell_path), seed)
    if not keep_out:
        spec = spec.replace(fixtures=tuple(f.model_copy(update={"keep_out": False}) for f in spec.fixtures))
    return Cell(spec, create_backend(spec, "sim", seed=seed))


def episode(seed: int, record: bool = False, cell_path: Path = CELL, keep_out: bool = True,
            obj: str = "red_block", target: str = "bin") -> tuple[float, float, int, bool, Any]:
    from robocell.skills import SkillContext

    cell = load(seed, cell_path, keep_out)
    world = cell.backend.world  # type: ignore[attr-defined]
    rec = None
    if record:
        rec = RecordingPyBullet(world.pb)
        world.pb = rec
    ctx = SkillContext.create(cell)
    t_sim0 = world.time
    t0 = time.perf_counter()
    ctx.call("pick_and_place", object=obj, target=target)
    wall = time.perf_counter() - t0
    sim = world.time - t_sim0
    steps = round((world.time - t_sim0) / world.timestep)
    ok = cell.spec.fixture(target).contains(cell.object_pose(obj).t) and not world.collisions
    state = None
    if record:
        state = rec
    cell.close()
    return wall, sim, steps, ok, state


def raw_replay(seed: int, rec: RecordingPyBullet) -> tuple[float, bool]:
    """The same scene in plain PyBullet, replaying the recorded motor commands."""
    cell = load(seed)  # identical scene and settle; then only raw calls
    world = cell.backend.world  # type: ignore[attr-defined]
    pb, client = world.pb, world.client
    by_step: dict[int, list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = {}
    for step, name, args, kw in rec.log:  # steps counted from the start of the recorded episode
        by_step.setdefault(step, []).append((name, args, kw))
    n = rec.step
    calls = [[(getattr(pb, name), args, kw) for name, args, kw in by_step.get(i, [])] for i in range(n)]
    step = pb.stepSimulation
    t0 = time.perf_counter()
    for i in range(n):
        for fn, args, kw in calls[i]:
            fn(*args, **kw)
        step(physicsClientId=client)
    wall = time.perf_counter() - t0
    ok = cell.spec.fixture("bin").contains(world.object_pose("red_block").t)
    cell.close()
    return wall, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", type=Path, default=CELL)
    ap.add_argument("--object", default="red_block")
    ap.add_argument("--target", default="bin")
    ap.add_argument("--keep-out-cost", action="store_true",
                    help="compare steps/s with and without the keep-out contact check instead")
    args = ap.parse_args()
    if args.keep_out_cost:
        keep_out_cost(args)
        return

    _, _, _, _, state = episode(args.seed, record=True)
    rec = state
    ours, raws, factors = [], [], []
    for _ in range(args.repeats):
        wall, sim, steps, ok, _ = episode(args.seed)
        raw_wall, raw_ok = raw_replay(args.seed, rec)
        ours.append(wall)
        raws.append(raw_wall)
        factors.append(sim / wall)
    wall, raw_wall = statistics.median(ours), statistics.median(raws)
    print(f"episode: {steps} steps = {sim:.2f} s simulated; placed: {ok}; raw replay placed: {raw_ok}")
    print(f"robocell  : {wall * 1000:8.1f} ms wall  -> {statistics.median(factors):6.1f}x real time")
    print(f"raw replay: {raw_wall * 1000:8.1f} ms wall  -> {sim / raw_wall:6.1f}x real time")
    print(f"overhead robocell / raw PyBullet: {wall / raw_wall:.3f}x")
    print(json.dumps({
        "bench": "sim_episode", "steps": steps, "sim_s": round(sim, 3),
        "robocell_wall_s": round(wall, 4), "raw_wall_s": round(raw_wall, 4),
        "realtime_factor": round(statistics.median(factors), 1),
        "overhead_ratio": round(wall / raw_wall, 3), "repeats": args.repeats,
    }))


def keep_out_cost(args: argparse.Namespace) -> None:
    """Steps per second of one episode with and without the keep-out check (runs interleaved, order
    alternating), and the time spent inside the check itself (immune to a busy host)."""
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu_rates: dict[bool, list[float]] = {True: [], False: []}
    steps_seen: dict[bool, int] = {}
    for i in range(args.repeats):
        for keep in ((True, False) if i % 2 == 0 else (False, True)):
            c0 = time.process_time()
            wall, sim, steps, ok, _ = episode(args.seed, cell_path=args.cell, keep_out=keep,
                                              obj=args.object, target=args.target)
            cpu = time.process_time() - c0  # includes loading the cell: only for the ratio's sanity
            if not ok:
                raise SystemExit(f"the episode failed (keep_out={keep}); pick another --seed or --target")
            rates[keep].append(steps / wall)
            cpu_rates[keep].append(steps / cpu)
            steps_seen[keep] = steps
    if steps_seen[True] != steps_seen[False]:
        raise SystemExit(f"the episodes differ ({steps_seen}); the comparison would not be like for like")
    check_us, step_us = _time_in_check(args)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"{args.cell.name}: pick_and_place {args.object} -> {args.target}, {steps_seen[True]} steps, "
          f"median of {args.repeats}")
    print(f"with keep-out check   : {on:8.0f} steps/s (wall)  {statistics.median(cpu_rates[True]):8.0f} (CPU, with load)")
    print(f"without keep-out check: {off:8.0f} steps/s (wall)  {statistics.median(cpu_rates[False]):8.0f} (CPU, with load)")
    print(f"inside the check: {check_us:.2f} us per step = {100 * check_us / step_us:.2f} % of a "
          f"{step_us:.0f} us step")
    print(json.dumps({"bench": "keep_out_cost", "cell": args.cell.name, "steps": steps_seen[True],
                      "steps_per_s_with": round(on), "steps_per_s_without": round(off),
                      "check_us_per_step": round(check_us, 2), "step_us": round(step_us, 1),
                      "repeats": args.repeats}))


def _time_in_check(args: argparse.Namespace) -> tuple[float, float]:
    """(µs inside the keep-out observer, µs per whole step) over one episode."""
    from robocell.skills import SkillContext

    cell = load(args.seed, args.cell)
    world = cell.backend.world  # type: ignore[attr-defined]
    monitor = cell.backend.keep_out  # type: ignore[attr-defined]
    spent = [0.0]

    def timed(w: Any) -> None:
        t = time.perf_counter()
        monitor(w)
        spent[0] += time.perf_counter() - t

    world._observers[world._observers.index(monitor)] = timed
    n0, t0 = world.time, time.perf_counter()
    SkillContext.create(cell).call("pick_and_place", object=args.object, target=args.target)
    wall = time.perf_counter() - t0
    steps = round((world.time - n0) / world.timestep)
    cell.close()
    return spent[0] / steps * 1e6, wall / steps * 1e6


if __name__ == "__main__":
    main()
