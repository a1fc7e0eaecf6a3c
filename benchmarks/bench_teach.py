"""Teaching by language: model load time, prompt -> validated program latency, accuracy.

Baseline, same run: one raw forward pass of the model on the same prompt (no
cache), i.e. the least any embedding-based reading of a prompt can cost.

    .venv/bin/python benchmarks/bench_teach.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CELLS = {"tabletop": ROOT / "examples/cells/tabletop.yaml", "kuka": ROOT / "examples/cells/kuka.yaml",
         "sorting": DATA / "cells/sorting.yaml"}


def main() -> None:
    from robocell.cellfile.spec import load_cell_spec
    from robocell.errors import RobocellError
    from robocell.skills.language import LanguageModel, Teacher
    from robocell.skills.language.promptset import load_cases, score_cases

    t0 = time.perf_counter()
    model = LanguageModel()
    load = time.perf_counter() - t0
    teacher = Teacher(model)
    specs = {k: load_cell_spec(v) for k, v in CELLS.items()}
    for name in ("teach_tuning.yaml", "teach_heldout.yaml", "teach_negative.yaml"):
        s = score_cases(teacher, load_cases(DATA / name), CELLS)  # also warms the per-cell caches
        print(f"{name:22s} {sum(o.ok for o in s.outcomes)}/{len(s.outcomes)} = {s.accuracy:.1%}")
    cases = [c for c in load_cases(DATA / "teach_heldout.yaml")]
    lat, base = [], []
    for c in cases:
        model._cache.clear()  # the prompt's clauses are embedded afresh; skill phrasings stay encoded
        t = time.perf_counter()
        try:
            teacher.program(c.prompt, specs[c.cell])
        except RobocellError:
            pass
        lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.forward([c.prompt])
        base.append(time.perf_counter() - t)
    lat.sort()
    med, p99 = statistics.median(lat), lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    bmed = statistics.median(base)
    print(f"model load (all-MiniLM-L6-v2, offline): {load * 1000:.0f} ms")
    print(f"prompt -> validated program (held-out, n={len(lat)}): median {med * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"baseline raw forward pass, same prompts: median {bmed * 1000:.1f} ms; ratio {med / bmed:.2f}x")


if __name__ == "__main__":
    main()
