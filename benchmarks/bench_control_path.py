"""Where robocell's 1 kHz control loop should run (issue 12): the alternatives measured in one run.

Every alternative runs the same control loop (``benchmarks/control_path_roles.py``): the real sim
driver paced at 1 kHz, the real ``Executor`` tracking servo setpoints, the state built and
msgpack-packed every tick and published at 250 Hz. Beside it runs the server's other work: a
command thread decoding, checking and answering 2000 requests/s from a real ZeroMQ load client
(state reads, a 500-point ``follow`` every 50th), a planner thread planning a move (IK, linear
or joint-space, ``robocell.motion.planning.plan_pose``) every 50 ms, reference cycles for the collector.
A Python client streams servo setpoints at 1 kHz.

  A       the loop is a thread of the command process (main's design: switch interval 0.2 ms, gc.freeze)
  A-fifo  A with the loop thread at SCHED_FIFO 80 (priority without isolation)
  A-chrt  A with the whole process at SCHED_FIFO 80, as ``chrt --fifo 80 robocell serve``
  B       the loop in its own process, reading its own servo socket at the start of every tick
  C       B at SCHED_FIFO 80 (its ZeroMQ I/O thread inherits the policy)
  D       C with the collector off in the loop process (gc.freeze at start, then gc.disable)
  E       B at nice -20 (what is left where SCHED_FIFO is refused)
  T       no loop: C's sockets with a receiver blocked in poll (the client's and ZeroMQ's share)

Figures per alternative: tick interval p50/p99/p99.9/max, late ticks (> 2 periods), the share of
setpoints applied at their next tick (the first tick starting at least ``--allowance`` after the
client sent it applies it or a newer one), send-to-applied latency, and the watchdog stops main's
rule would have commanded although the client kept streaming. Ratios are against A in the same run.

Linux only (it reads /proc and sets scheduling policies). Run:
  .venv/bin/python benchmarks/bench_control_path.py [--load] [--seconds 12] [--rounds 1] [--only A,B,C]
                                                      [--client-sched fifo]
``--load`` measures quietly first, then again beside two CPU-bound ``while True: pass`` processes.
``--rounds N`` interleaves N measurements of every alternative (they see the same machine load).
``--client-sched fifo`` runs the servo client at SCHED_FIFO 70, so that a client descheduled by
the host does not count against the server.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ROLES = Path(__file__).resolve().parent / "control_path_roles.py"
PERIOD = 0.001  # s: the sim driver's control period
START_TIMEOUT = 240.0  # s: imports, URDF and PyBullet set-up on a loaded 2-core machine
STOP_TIMEOUT = 60.0


def die_with_parent() -> None:
    """In a child, before exec: the kernel SIGKILLs it when the benchmark dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


class BenchError(RuntimeError):
    """A role process failed; the message carries the tail of its log."""


@dataclass(frozen=True)
class Alt:
    key: str
    label: str
    kind: str  # thread: role server; process: roles control + command; floor: roles sink + command
    sched: str  # normal | fifo | nice | fifo-all (role server: every thread)
    nogc: bool = False


ALTERNATIVES = (
    Alt("A", "thread beside command + planner threads (main)", "thread", "normal"),
    Alt("A-fifo", "A, loop thread SCHED_FIFO 80", "thread", "fifo"),
    Alt("A-chrt", "A, whole process SCHED_FIFO 80 (chrt --fifo 80)", "thread", "fifo-all"),
    Alt("B", "own process, own servo socket", "process", "normal"),
    Alt("C", "B + SCHED_FIFO 80", "process", "fifo"),
    Alt("D", "C + gc.disable in the loop process", "process", "fifo", nogc=True),
    Alt("E", "B + nice -20", "process", "nice"),
    Alt("T", "transport floor: C's sockets, a receiver blocked in poll, no loop", "floor", "fifo"),
)


# ---------------------------------------------------------------- processes
class Role:
    """One role process of control_path_roles.py; stdin 'stop' ends it, stdout says READY/DONE."""

    def __init__(self, name: str, args: list[str], tmp: Path) -> None:
        self.name = name
        self.out = str(tmp / name)
        self.log_path = tmp / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(ROLES), name, *args, "--out", self.out],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT,
                                     bufsize=0, preexec_fn=die_with_parent)
        self._buf = b""

    def tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-25:]) or "(empty log)"

    def line(self, prefix: bytes, timeout: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        t_end = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                if line.startswith(prefix):
                    return line[len(prefix):]
            left = t_end - time.monotonic()
            if left <= 0:
                raise BenchError(f"role '{self.name}': no {prefix.decode().strip()} line within {timeout:.0f} s; "
                                 f"its log:\n{self.tail()}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    rc = self.proc.wait(timeout=10)
                    raise BenchError(f"role '{self.name}' exited with code {rc} before its "
                                     f"{prefix.decode().strip()} line; its log:\n{self.tail()}")
                self._buf += chunk

    def ready(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.line(b"READY ", START_TIMEOUT))
        return info

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it died already: line() below reports its exit code and log
        self.line(b"DONE", STOP_TIMEOUT)
        rc = self.proc.wait(timeout=STOP_TIMEOUT)
        if rc != 0:
            raise BenchError(f"role '{self.name}' exited with code {rc}; its log:\n{self.tail()}")
        return self.results()

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for a role that ends by itself (the servo client)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"role '{self.name}' did not finish within {timeout:.0f} s; its log:\n{self.tail()}") from None
        if rc != 0:
            raise BenchError(f"role '{self.name}' exited with code {rc}; its log:\n{self.tail()}")
        return self.results()

    def results(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(Path(self.out + ".json").read_text())
        if Path(self.out + ".npz").exists():
            with np.load(self.out + ".npz") as z:
                data.update({k: z[k] for k in z.files})
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


# ---------------------------------------------------------------- one measurement
@dataclass
class Run:
    intervals: np.ndarray  # s between consecutive tick starts while the stream ran
    busy: np.ndarray  # s of work in each tick (start to the wait for the next period)
    on_time: np.ndarray  # per counted setpoint: applied (or superseded by a newer one) at its next tick
    latency: np.ndarray  # s from send to the start of the tick that applied it (or a newer one)
    never: int  # setpoints no tick applied
    false_trips: int
    trip_silences_ms: list[float]
    rejected: int
    first_error: str
    sched: str
    info: dict[str, Any] = field(default_factory=dict)


def analyse(ticks: np.ndarray, applied: np.ndarray, busy: np.ndarray, sends: np.ndarray, warmup: int,
            allowance: float) -> dict[str, Any]:
    """The figures of one measurement.

    ``ticks[i]`` is when tick ``i`` started, ``applied[i]`` the servo seq it followed, ``busy[i]``
    how long its work took; ``sends[k]`` is when the client sent seq ``k + 1``.
    """
    ts = sends[warmup:]
    seqs = np.arange(warmup + 1, len(sends) + 1)
    window = (ticks >= ts[0]) & (ticks <= ts[-1] + 0.01)
    newest = np.maximum.accumulate(applied)
    nxt = np.searchsorted(ticks, ts + allowance, side="left")
    inside = nxt < len(ticks)
    on_time = np.zeros(len(ts), dtype=bool)
    on_time[inside] = newest[nxt[inside]] >= seqs[inside]
    first = np.searchsorted(newest, seqs, side="left")
    got = first < len(ticks)
    latency = np.full(len(ts), np.nan)
    latency[got] = ticks[first[got]] - ts[got]
    return {"intervals": np.diff(ticks[window]), "busy": busy[window], "on_time": on_time, "latency": latency[got],
            "never": int(np.sum(~got))}


def floor(arrivals: np.ndarray, sends: np.ndarray, warmup: int, allowance: float) -> dict[str, Any]:
    """The transport floor: one-way delays, and the share a perfect 1 kHz loop would apply on time.

    A perfect loop ticks exactly every period at a phase unrelated to the client's. A setpoint
    delayed ``d`` counts for the first tick at least ``allowance`` after sending, which comes a
    uniform U(0, period) later; it makes that tick with probability
    clip((allowance + period - d) / period, 0, 1).
    """
    n = len(sends)
    d = arrivals[warmup:n] - sends[warmup:]
    got = np.isfinite(d)
    p_on = np.clip((allowance + PERIOD - d[got]) / PERIOD, 0.0, 1.0)
    return {"on_time": np.concatenate([p_on, np.zeros(int(np.sum(~got)))]), "delay": d[got],
            "never": int(np.sum(~got))}


def measure(alt: Alt, a: argparse.Namespace, tmp: Path) -> Run:
    roles: list[Role] = []

    def role(name: str, *args: str) -> Role:
        r = Role(name, list(args), tmp)
        roles.append(r)
        return r

    try:
        if alt.kind == "thread":
            owner = role("server", "--sched", alt.sched)
            r = owner.ready()
            servo_ep, cmd_ep, state_ep, command = r["servo"], r["commands"], r["state"], None
            info = {"loop": r}
        else:
            owner = (role("sink", "--sched", alt.sched) if alt.kind == "floor" else
                     role("control", "--sched", alt.sched, *(["--nogc"] if alt.nogc else [])))
            r = owner.ready()
            command = role("command", "--state", r["state"], "--heartbeat", r["heartbeat"], "--q0", json.dumps(r["q0"]))
            rc = command.ready()
            servo_ep, cmd_ep, state_ep = r["servo"], rc["commands"], r["state"]
            info = {"loop": r, "command": rc}
        q0 = json.dumps(r["q0"])
        load = role("load", "--commands", cmd_ep, "--state", state_ep, "--q0", q0, "--rate", str(a.request_rate))
        load.ready()
        n = int(a.seconds * 1000)
        servo = role("servo", "--endpoint", servo_ep, "--q0", q0, "--n", str(n), "--warmup", "1000",
                     "--sched", a.client_sched)
        client = servo.finish(timeout=a.seconds + 120.0)
        info["load"] = load.stop()
        if command is not None:
            info["command_result"] = command.stop()
        res = owner.stop()
    except BenchError:
        for x in roles:  # the failing role's log is in the message; the others may say why
            print(f"--- log of role '{x.name}' (exit code {x.proc.poll()}):\n{x.tail()}", file=sys.stderr)
        raise
    finally:
        for x in roles:
            x.kill()
    info["client"] = {k: v for k, v in client.items() if k not in ("sends", "warmup")}
    info["client"]["send_gap_max"] = float(np.max(np.diff(client["sends"][int(client["warmup"][0]):])))
    info["result"] = {k: v for k, v in res.items() if k not in ("ticks", "applied", "arrivals")}
    warmup = int(client["warmup"][0])
    if alt.kind == "floor":
        f = floor(res["arrivals"], client["sends"], warmup, a.allowance)
        return Run(np.zeros(0), np.zeros(0), f["on_time"], f["delay"], f["never"], 0, [], sum(client["errors"].values()), "",
                   res["sched"], info)
    if res["overflow"]:
        raise BenchError(f"{alt.key}: the loop's tick record overflowed ({res['ticks']} ticks); shorten --seconds")
    f = analyse(res["ticks"], res["applied"], res["busy"], client["sends"], warmup, a.allowance)
    return Run(f["intervals"], f["busy"], f["on_time"], f["latency"], f["never"], res["false_trips"], res["trip_silences_ms"],
               res["rejected"] + sum(client["errors"].values()), res["first_error"], res["sched"], info)


# ---------------------------------------------------------------- report
def pct(x: np.ndarray, p: float) -> float:
    return float(np.percentile(x, p)) if len(x) else float("nan")


def ratio(x: float, base: float) -> str:
    if base == 0:
        return "—" if x == 0 else "∞"
    return f"{x / base:.2f}×"


def summarise(runs: list[Run]) -> dict[str, Any]:
    iv = np.concatenate([r.intervals for r in runs])
    on = np.concatenate([r.on_time for r in runs])
    lat = np.concatenate([r.latency for r in runs])
    busy = np.concatenate([r.busy for r in runs])
    return {"p50": pct(iv, 50), "p99": pct(iv, 99), "p999": pct(iv, 99.9),
            "max": float(iv.max()) if len(iv) else float("nan"),
            "ticks": len(iv), "late": int(np.sum(iv > 2 * PERIOD)), "n": len(on), "on": float(on.sum()),
            "busy50": pct(busy, 50), "busy99": pct(busy, 99), "busy999": pct(busy, 99.9),
            "lat50": pct(lat, 50), "lat99": pct(lat, 99), "lat999": pct(lat, 99.9),
            "latmax": float(lat.max()) if len(lat) else float("nan"),
            "never": sum(r.never for r in runs), "trips": sum(r.false_trips for r in runs),
            "trip_max": max([s for r in runs for s in r.trip_silences_ms], default=0.0),
            "rejected": sum(r.rejected for r in runs), "sched": runs[0].sched,
            "dropped": sum(int(r.info["client"]["dropped"]) for r in runs),
            "gap": max(r.info["client"]["send_gap_max"] for r in runs),
            "first_error": next((r.first_error for r in runs if r.first_error), "")}


def table(condition: str, results: dict[str, list[Run]]) -> list[str]:
    s = {k: summarise(v) for k, v in results.items()}
    base = s.get("A")
    rows = [f"**{condition}**", "",
            "| alternative | scheduling | tick interval p50 / p99 / p99.9 / max (ms) | work per tick p50 / p99 / p99.9 (ms) | late ticks (> 2 ms) | "
            "setpoints applied at the next tick | send → applied p50 / p99 / max (ms) | false watchdog stops | client's longest send gap (ms) | "
            "× A: p99.9 / max / late / missed |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for alt in ALTERNATIVES:
        if alt.key not in s or alt.kind == "floor":
            continue
        x = s[alt.key]
        missed = round(x["n"] - x["on"])
        vs = (f"{ratio(x['p999'], base['p999'])} / {ratio(x['max'], base['max'])} / {ratio(x['late'], base['late'])} / "
              f"{ratio(missed, round(base['n'] - base['on']))}" if base else "(A not run)")
        trips = f"{x['trips']} (longest silence {x['trip_max']:.0f} ms)" if x["trips"] else "0"
        never = f", {x['never']} never applied" if x["never"] else ""
        rows.append(
            f"| {alt.key}: {alt.label} | {x['sched']} | {x['p50'] * 1e3:.3f} / {x['p99'] * 1e3:.3f} / "
            f"{x['p999'] * 1e3:.3f} / {x['max'] * 1e3:.1f} | {x['busy50'] * 1e3:.3f} / {x['busy99'] * 1e3:.3f} / "
            f"{x['busy999'] * 1e3:.3f} | {x['late']}/{x['ticks']} | "
            f"**{100 * x['on'] / x['n']:.2f} %** ({missed} missed{never}) | "
            f"{x['lat50'] * 1e3:.2f} / {x['lat99'] * 1e3:.2f} / {x['latmax'] * 1e3:.1f} | {trips} | {x['gap'] * 1e3:.1f} | {vs} |")
    if "T" in s:
        x = s["T"]
        rows += ["", f"Transport floor (T: {ALTERNATIVES[-1].label}; {x['sched']}): one-way delay client → "
                     f"receiver p50 {x['lat50'] * 1e3:.3f}, p99 {x['lat99'] * 1e3:.3f}, p99.9 {x['lat999'] * 1e3:.3f}, "
                     f"max {x['latmax'] * 1e3:.1f} ms; a perfect 1 kHz loop behind this transport would apply "
                     f"**{100 * x['on'] / x['n']:.2f} %** of the setpoints at their next tick."]
    for k, x in s.items():
        if x["rejected"] or x["dropped"]:
            rows.append(f"\n{k}: {x['rejected']} setpoints rejected, {x['dropped']} dropped by the client "
                        f"(its send queue full); first rejection: {x['first_error'] or '-'}")
    return rows


def side_table(results: dict[str, list[Run]]) -> list[str]:
    """What else happened: the load each alternative carried, the collector, the command link, CPU."""
    rows = ["| alternative | load client: replies / p99 ms / skipped | planner: plans / max ms | "
            "collections in the loop's process: gen0/1/2, longest ms | in the command process | "
            "command heartbeat: longest gap ms | CPU s: loop process / command process / servo client / load client | "
            "first full collection (before gc.freeze) |", "|---|---|---|---|---|---|---|---|"]
    for alt in ALTERNATIVES:
        for r in results.get(alt.key, []) if alt.kind != "floor" else []:
            res, ld, cl = r.info["result"], r.info["load"], r.info["client"]
            cres = r.info.get("command_result")
            gl = res["gc_loop"]
            if cres is None:
                cmd_gc, cmd_cpu, cres = "(same process)", "(same)", res
            else:
                g = cres["gc_command"]
                cmd_gc, cmd_cpu = f"{'/'.join(map(str, g['count']))}, {max(g['max_ms']):.2f}", f"{cres['cpu_s']:.1f}"
            heap = r.info["loop"]["heap"]
            extra = (f"; gc off: {res['garbage_left']} objects of cyclic garbage left, RSS +{res['rss_growth_kib']} KiB"
                     if alt.nogc else "")
            silence = f"{res['command_silence_max_ms']:.0f}" if "command_silence_max_ms" in res else "—"
            rows.append(
                f"| {alt.key} | {ld['replies']} / {ld['rtt_p99_ms']:.2f} / {ld['skipped']} | "
                f"{cres['plans']} / {cres['plan_max_ms']:.1f} | {'/'.join(map(str, gl['count']))}, "
                f"{max(gl['max_ms']):.2f}{extra} | {cmd_gc} | {silence} | "
                f"{res['cpu_s']:.1f} / {cmd_cpu} / {cl['cpu_s']:.1f} / {ld['cpu_s']:.1f} | "
                f"{heap['full_collection_ms']:.0f} ms over {heap['objects']} objects |")
    for alt in ALTERNATIVES:
        for r in results.get(alt.key, [])[:1]:
            rows.append(f"\n{alt.key} loop process threads (name:policy/rt priority/nice): "
                        + ", ".join(r.info["loop"]["threads"]))
    return rows


def host() -> list[str]:
    """What this host grants a real-time thread, and why."""
    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return "absent"

    cap = int(next((ln.split()[1] for ln in read("/proc/self/status").splitlines() if ln.startswith("CapEff")), "0"), 16)
    probe = subprocess.run([sys.executable, "-c", "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(80))"],
                           capture_output=True, text=True, timeout=60)
    fifo = "granted" if probe.returncode == 0 else "refused: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    return [f"host: {os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs, uid {os.getuid()}, "
            f"CAP_SYS_NICE {'yes' if cap >> 23 & 1 else 'no'}, RLIMIT_RTPRIO {resource.getrlimit(resource.RLIMIT_RTPRIO)}, "
            f"sched_rt_runtime_us {read('/proc/sys/kernel/sched_rt_runtime_us')} per "
            f"sched_rt_period_us {read('/proc/sys/kernel/sched_rt_period_us')}, "
            f"cgroup cpu.rt_runtime_us {read('/sys/fs/cgroup/cpu/cpu.rt_runtime_us')}; SCHED_FIFO 80: {fifo}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", action="store_true", help="also measure beside two CPU-bound processes")
    ap.add_argument("--no-quiet", action="store_true", help="with --load: skip the quiet measurement")
    ap.add_argument("--seconds", type=float, default=12.0, help="servo stream per measurement (s)")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds per condition")
    ap.add_argument("--only", default="", help="comma-separated alternatives, e.g. A,B,C")
    ap.add_argument("--allowance", type=float, default=0.0002,
                    help="s a setpoint may be in flight and still count for the next tick (default 0.2 ms)")
    ap.add_argument("--request-rate", type=float, default=2000.0, help="load client requests/s")
    ap.add_argument("--client-sched", default="normal", choices=["normal", "fifo"],
                    help="the servo client's scheduling: fifo (priority 70) takes the client out of the figures")
    a = ap.parse_args()
    # SIGTERM runs the clean-up below (the busy loops and the roles are killed) like Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    known = {x.key for x in ALTERNATIVES}
    chosen = [k for k in a.only.split(",") if k] or [x.key for x in ALTERNATIVES]
    bad = [k for k in chosen if k not in known]
    problems = [f"--only: unknown alternative(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"] if bad else []
    if not 1.0 <= a.seconds <= 120.0:
        problems.append(f"--seconds {a.seconds} is outside [1, 120] s")
    if not 1 <= a.rounds <= 10:
        problems.append(f"--rounds {a.rounds} is outside [1, 10]")
    if not 0.0 <= a.allowance <= 0.001:
        problems.append(f"--allowance {a.allowance} s is outside [0, 0.001] s")
    if not 10.0 <= a.request_rate <= 5000.0:
        problems.append(f"--request-rate {a.request_rate} is outside [10, 5000] requests/s")
    if a.no_quiet and not a.load:
        problems.append("--no-quiet needs --load (nothing would be measured)")
    if problems:
        print("bench_control_path: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(2)
    alts = [x for x in ALTERNATIVES if x.key in chosen]
    conditions = ([] if a.no_quiet else ["quiet"]) + (["loaded"] if a.load else [])
    print(*host(), sep="\n", flush=True)
    print(f"{a.seconds:.0f} s of 1 kHz servo per measurement, {a.rounds} round(s), allowance "
          f"{a.allowance * 1e3:.2f} ms, {a.request_rate:.0f} requests/s of load, servo client "
          f"{'SCHED_FIFO 70' if a.client_sched == 'fifo' else 'at normal priority'}", flush=True)
    out: list[str] = []
    for cond in conditions:
        busy: list[subprocess.Popen[bytes]] = []
        results: dict[str, list[Run]] = {}
        try:
            if cond == "loaded":
                busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=die_with_parent)
                        for _ in range(2)]
            la0 = os.getloadavg()
            for rnd in range(a.rounds):
                for alt in alts:
                    with tempfile.TemporaryDirectory(prefix=f"bench-cp-{alt.key}-") as d:
                        t = time.monotonic()
                        run = measure(alt, a, Path(d))
                    results.setdefault(alt.key, []).append(run)
                    s = summarise([run])
                    print(f"[{cond} {rnd + 1}/{a.rounds}] {alt.key}: tick p99.9 {s['p999'] * 1e3:.3f} ms, max "
                          f"{s['max'] * 1e3:.1f} ms, late {s['late']}, on time {100 * s['on'] / s['n']:.2f} %, "
                          f"false stops {s['trips']} ({time.monotonic() - t:.0f} s)", flush=True)
            la1 = os.getloadavg()
        finally:
            for b in busy:
                b.kill()
                b.wait(timeout=10)
        head = (f"{cond}{' (two `while True: pass` processes beside it)' if cond == 'loaded' else ''}, "
                f"load average {la0[0]:.1f} → {la1[0]:.1f}")
        section = ["", *table(head, results), "", *side_table(results)]
        print(*section, sep="\n", flush=True)
        out += section
    if len(conditions) > 1:
        print("\n# all conditions", *out, sep="\n")


if __name__ == "__main__":
    main()
