"""IK benchmark: robocell's verified IK against raw roboticstoolbox ``ik_LM``.

For the Panda, ``--n`` random reachable targets (FK of uniform random joint
configurations inside the URDF limits, from ``--seed``) are solved from the
home configuration by

* ``Kinematics.ik`` (LM from the seed, FK/limit verification, deterministic
  retries), and
* roboticstoolbox's ``Robot.ik_LM`` with its defaults, one call, no
  verification or retry (the baseline, measured in the same run and
  interleaved target by target so both see the same machine load).

Success of robocell means a returned solution (it is verified internally);
the baseline's is reported twice: its own ``success`` flag, and whether its
answer passes robocell's checks (1 mm, 0.01 rad, inside the joint limits).
Prints a table and, last, one JSON line with the figures.

    python benchmarks/bench_ik.py [--n 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of targets")
    parser.add_argument("--seed", type=int, default=0, help="seed of the target generator")
    parser.add_argument("--model", default="panda", help="built-in arm model")
    args = parser.parse_args()

    warnings.simplefilter("ignore", DeprecationWarning)
    from robocell.errors import UnreachableError
    from robocell.motion.kinematics import Kinematics
    from robocell.motion.arm_models import get_model

    model = get_model(args.model)
    t0 = time.perf_counter()
    kin = Kinematics.from_model(model)
    build_s = time.perf_counter() - t0
    robot = kin._robot  # the same parsed URDF, so both solve the identical chain
    home = np.array(model.home)

    rng = np.random.default_rng(args.seed)
    qs = rng.uniform(kin.lower, kin.upper, size=(args.n, kin.n))
    targets = [kin.fk(q) for q in qs]
    mats = [t.A for t in targets]

    # warm up both paths (first-call allocation, lazy C++ chain build)
    kin.ik(targets[0], home)
    robot.ik_LM(mats[0], end=model.tcp_link, start=model.base_link, q0=home)

    ours_t, raw_t = np.empty(args.n), np.empty(args.n)
    ours_ok = raw_flag = raw_verified = 0
    for i in range(args.n):
        t = time.perf_counter()
        try:
            q = kin.ik(targets[i], home)
            ours_t[i] = time.perf_counter() - t
            pe, re = kin.pose_error(kin.fk(q), targets[i])
            ours_ok += int(pe <= 1e-3 and re <= 1e-2 and kin.within_limits(q))
        except UnreachableError:
            ours_t[i] = time.perf_counter() - t

        t = time.perf_counter()
        sol = robot.ik_LM(mats[i], end=model.tcp_link, start=model.base_link, q0=home)
        raw_t[i] = time.perf_counter() - t
        raw_flag += int(sol.success)
        qr = np.asarray(sol.q, dtype=float)
        pe, re = kin.pose_error(kin.fk(qr), targets[i])
        raw_verified += int(pe <= 1e-3 and re <= 1e-2 and kin.within_limits(qr))

    n = args.n
    res = {
        "model": model.name,
        "n": n,
        "seed": args.seed,
        "build_s": round(build_s, 4),
        "robocell_success": ours_ok / n,
        "robocell_median_us": float(np.median(ours_t) * 1e6),
        "robocell_p95_us": float(np.percentile(ours_t, 95) * 1e6),
        "raw_success_flag": raw_flag / n,
        "raw_success_verified": raw_verified / n,
        "raw_median_us": float(np.median(raw_t) * 1e6),
        "raw_p95_us": float(np.percentile(raw_t, 95) * 1e6),
    }
    res["overhead_ratio_median"] = res["robocell_median_us"] / res["raw_median_us"]

    print(f"IK benchmark, {model.name}: {n} random reachable targets, seed {args.seed}, start at home")
    print(f"{'solver':<28}{'success':>10}{'median us':>12}{'p95 us':>12}")
    print(f"{'robocell Kinematics.ik':<28}{res['robocell_success']:>10.2%}"
          f"{res['robocell_median_us']:>12.0f}{res['robocell_p95_us']:>12.0f}")
    print(f"{'rtb Robot.ik_LM (flag)':<28}{res['raw_success_flag']:>10.2%}"
          f"{res['raw_median_us']:>12.0f}{res['raw_p95_us']:>12.0f}")
    print(f"{'rtb Robot.ik_LM (verified)':<28}{res['raw_success_verified']:>10.2%}{'':>12}{'':>12}")
    print(f"overhead ratio median(robocell)/median(raw) = {res['overhead_ratio_median']:.2f}")
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}))


if __name__ == "__main__":
    main()
