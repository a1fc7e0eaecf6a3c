"""Pick-and-place success rate over randomised trials (the figure behind `robocell eval`).

Each trial is a fresh simulated cell whose objects are randomised in their
declared regions from the trial's seed (derived from --seed exactly as
`robocell eval` derives it, so a failing seed replays with `robocell run`).

    python benchmarks/bench_pick_place.py [--trials 200] [--seed 0] [--workers 2] [--cell tabletop|kuka|both]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from robocell.eval.evaluate import TrialResult, run_trial, trial_seeds

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "examples" / "programs" / "pick_place_red.yaml"
CELLS = {"tabletop": ROOT / "examples/cells/tabletop.yaml", "kuka": ROOT / "examples/cells/kuka.yaml"}


def _trial(job: tuple[str, int, int]) -> TrialResult:
    cell, seed, k = job
    return run_trial(CELLS[cell], PROGRAM, seed, k)


def bench(cell: str, trials: int, seed: int, workers: int) -> dict[str, object]:
    jobs = [(cell, s, k) for k, s in enumerate(trial_seeds(seed, trials))]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_trial, jobs))
    wall = time.perf_counter() - t0
    ok = sum(r.success for r in results)
    fails = [r for r in results if not r.success]
    print(f"{cell}: {ok}/{trials} = {ok / trials:.1%} success; {wall:.0f} s wall with {workers} workers; "
          f"{sum(r.sim_time for r in results) / trials:.2f} s simulated per trial")
    for r in fails:
        print(f"  failed trial {r.trial} seed {r.seed}: {r.error}")
        print(f"    replay: robocell run {PROGRAM.relative_to(ROOT)} --cell {CELLS[cell].relative_to(ROOT)} --seed {r.seed}")
    return {"cell": cell, "trials": trials, "successes": ok, "success_rate": ok / trials,
            "failed_seeds": [r.seed for r in fails], "wall_s": round(wall, 1), "workers": workers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cell", choices=["tabletop", "kuka", "both"], default="both")
    args = ap.parse_args()
    cells = ["tabletop", "kuka"] if args.cell == "both" else [args.cell]
    out = [bench(c, args.trials, args.seed, args.workers) for c in cells]
    print(json.dumps({"bench": "pick_place_success", "results": out}))


if __name__ == "__main__":
    main()
