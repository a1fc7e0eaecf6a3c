"""Cost of `import robocell` (and of `robocell --help`), against a bare interpreter start.

    python benchmarks/bench_import.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def timed(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    bare = timed("pass", args.repeats)
    imp = timed("import robocell", args.repeats)
    cli = timed("import sys; sys.argv=['robocell','--help']; import robocell.cli.main as c; c.main(['--help'])",
                args.repeats)
    print(f"bare interpreter      : {bare * 1000:7.1f} ms")
    print(f"import robocell       : {imp * 1000:7.1f} ms  (+{(imp - bare) * 1000:.1f} ms, {imp / bare:.2f}x bare)")
    print(f"robocell --help       : {cli * 1000:7.1f} ms  (+{(cli - bare) * 1000:.1f} ms, {cli / bare:.2f}x bare)")
    print(json.dumps({"bench": "import", "bare_s": round(bare, 4), "import_s": round(imp - bare, 4),
                      "help_s": round(cli - bare, 4)}))


if __name__ == "__main__":
    main()
