"""The ZeroMQ hardware layer, measured against raw pyzmq in the same run.

1. State round trip: robocell ``state`` requests (client library + server)
   vs a raw pyzmq DEALER/ROUTER ping-pong of the same request and reply sizes
   against a bare echo server in another process; CURVE off and on.
2. Servo streaming at 1 kHz from a Python client: share of setpoints applied
   at the next server tick, and the client's send-period jitter.
3. Watchdog: SIGKILL the controlling client (on application heartbeats) mid-motion N times;
   the time from its last message to the server's stop command (limit: watchdog + 10 ms).
   Clients on a liveness connection: benchmarks/bench_watchdog.py.
4. Under attack: 20 clients (threads in two processes, each with its own socket)
   send state/hello/garbage/lease requests as fast as they can while one client
   controls the arm: the controller's request round trip (p50/p99) and the time
   from its `stop` to the state stream showing the arm stopped, against the same
   figures measured without the hammering in the same run.

Run: .venv/bin/python benchmarks/bench_remote.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from robocell.hardware.spawn import ServerProcess, wait_ready

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "examples" / "cells" / "tabletop.yaml"

ECHO = textwrap.dedent("""
    import sys, zmq
    size, keys = int(sys.argv[1]), sys.argv[2]
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.LINGER, 0)
    if keys != "-":
        import zmq.auth
        from zmq.auth.thread import ThreadAuthenticator
        auth = ThreadAuthenticator(ctx); auth.start(); auth.configure_curve(domain="*", location=keys + "/authorized")
        pub, sec = zmq.auth.load_certificate(keys + "/server.key_secret")
        s.curve_secretkey, s.curve_publickey, s.curve_server = sec, pub, True
    s.bind("tcp://127.0.0.1:0")
    print("on", s.getsockopt_string(zmq.LAST_ENDPOINT), "state tcp://-", flush=True)
    payload = b"x" * size
    while True:
        ident, msg = s.recv_multipart()
        s.send_multipart([ident, payload])
""")


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    return proc, wait_ready(proc, timeout=90.0)[0]


def serve(*extra: str) -> ServerProcess:
    return ServerProcess(CELL, *extra, cwd=ROOT).start(timeout=90.0)


def pct(x: list[float] | np.ndarray, p: float) -> float:
    return float(np.percentile(np.asarray(x), p))


# ---------------------------------------------------------------- 1. round trip
def raw_rtt(endpoint: str, request: bytes, n: int, keys: object) -> np.ndarray:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        s.curve_secretkey, s.curve_publickey, s.curve_serverkey = keys.secret, keys.public, keys.server_public  # type: ignore[attr-defined]
    s.connect(endpoint)
    out = np.empty(n)
    for i in range(n + 200):
        t = time.perf_counter()
        s.send(request)
        s.recv()
        if i >= 200:
            out[i - 200] = time.perf_counter() - t
    ctx.destroy(linger=0)
    return out


def robocell_rtt(endpoint: str, n: int, keys: object) -> tuple[np.ndarray, int, int]:
    from robocell.hardware.client import Connection
    from robocell.hardware.protocol import VERSION, pack, reply

    conn = Connection(endpoint, keys=keys, timeout=5.0)  # type: ignore[arg-type]
    out = np.empty(n)
    for i in range(n + 200):
        t = time.perf_counter()
        state = conn.request("state")
        if i >= 200:
            out[i - 200] = time.perf_counter() - t
    req = len(pack({"v": VERSION, "op": "state", "id": 2**60, "deadline": 2.0}))
    rep = len(pack(reply(2**60, result=state)))
    conn.close()
    return out, req, rep


def bench_rtt(n: int, keys_dir: Path) -> list[str]:
    from robocell.hardware.security import load_client_keys

    rows = []
    for curve in (False, True):
        keys = load_client_keys(keys_dir) if curve else None
        extra = ["--keys", str(keys_dir)] if curve else []
        srv = serve(*extra)
        ep = srv.endpoint
        try:
            rc, req_size, rep_size = robocell_rtt(ep, 300, keys)  # warm-up and sizes
            echo, eep = start([sys.executable, "-c", ECHO, str(rep_size), str(keys_dir) if curve else "-"])
            try:
                raws, robs = [], []
                for _ in range(3):  # interleaved rounds: both see the same machine load
                    raws.append(raw_rtt(eep, b"x" * req_size, n, keys))
                    robs.append(robocell_rtt(ep, n, keys)[0])
                raw, rob = np.concatenate(raws), np.concatenate(robs)
            finally:
                echo.kill()
        finally:
            srv.stop()
        name = "CURVE" if curve else "no encryption"
        rows.append(f"| state round trip, {name} | {np.median(rob) * 1e6:.0f} | {pct(rob, 99) * 1e6:.0f} | "
                    f"{np.median(raw) * 1e6:.0f} | {pct(raw, 99) * 1e6:.0f} | "
                    f"**{np.median(rob) / np.median(raw):.2f}×** | {pct(rob, 99) / pct(raw, 99):.2f}× |")
        print(rows[-1], f"(request {req_size} B, reply {rep_size} B, {3 * n} round trips each)", flush=True)
    return rows


# ---------------------------------------------------------------- 2. servo at 1 kHz
def bench_servo(seconds: float, pipelined: bool, synced: bool = False, control: str = "thread",
                figures: dict[str, float] | None = None) -> list[str]:
    """``synced``: the client sends each setpoint when the server's 1 kHz state arrives (the
    receive-state, send-command loop of robot control interfaces) instead of on its own clock."""
    from robocell.hardware.client import Connection
    from robocell.hardware.drivers.sim import Pacer

    srv = serve(*(["--state-rate", "1000"] if synced else []), "--control", control)
    ep = srv.endpoint
    try:
        conn = Connection(ep, timeout=5.0)
        conn.acquire()
        q = np.asarray(conn.state()["q_cmd"], dtype=float)
        stats0 = conn.request("stats")["servo"]
        n = int(seconds * 1000)
        sends = np.empty(n)
        rtts = np.empty(n)
        pacer = Pacer(0.001)
        amp = 0.3
        for k in range(n):
            if synced:
                conn.next_state()
            else:
                pacer.wait()
            target = q.copy()
            target[0] += amp * (1 - np.cos(2 * np.pi * 0.5 * k / 1000)) / 2  # smooth 0.5 Hz sway, < 0.5 rad/s
            t = time.perf_counter()
            sends[k] = t
            args = {"q": target.tolist(), "dt": 0.001, "seq": k + 1}
            if pipelined:
                conn.send_nowait("servo", args)
            else:
                conn.request("servo", args)
            rtts[k] = time.perf_counter() - t
        conn.flush()
        s = conn.request("stats")
        conn.close()
    finally:
        srv.stop()
    sv = {k: s["servo"][k] - stats0[k] for k in stats0}
    period = np.diff(sends)
    jitter = np.abs(period - 0.001)
    share = sv["applied_next_tick"] / max(1, sv["received"])
    if figures is not None:
        figures["servo_next_tick"] = share
    rows = [
        f"| `--control {control}`: servo stream ({'state-synchronised, ' if synced else ''}{'pipelined' if pipelined else 'request/reply'}), {n} setpoints at 1 kHz | applied at the next tick: **{100 * share:.2f} %** "
        f"({sv['applied_next_tick']}/{sv['received']}; late {sv['applied_late']}, superseded {sv['superseded']}) | "
        f"period p50 {np.median(period) * 1e3:.3f} ms, p99 {pct(period, 99) * 1e3:.3f} ms; "
        f"jitter p50 {np.median(jitter) * 1e6:.0f} µs, p99 {pct(jitter, 99) * 1e6:.0f} µs | "
        f"client send time p50 {np.median(rtts) * 1e6:.0f} µs, p99 {pct(rtts, 99) * 1e6:.0f} µs | "
        f"server tick p50 {s['tick_p50'] * 1e3:.3f} ms, p99 {s['tick_p99'] * 1e3:.3f} ms, late ticks {s['late_ticks']}/{s['ticks']} |"
    ]
    print(rows[0], flush=True)
    return rows


# ---------------------------------------------------------------- 3. watchdog
VICTIM = textwrap.dedent("""
    import sys
    import numpy as np
    from robocell.hardware.client import Connection
    c = Connection(sys.argv[1], timeout=5.0, liveness=False)  # application heartbeats: the --watchdog path
    c.acquire()
    q = np.asarray(c.state()["q_cmd"])
    q[0] += float(sys.argv[2])
    c.request("move_joints", {"q": q.tolist(), "speed": 0.3})
    print("moving", flush=True)
    sys.stdin.read()
""")


def bench_watchdog(trials: int) -> list[str]:
    from robocell.hardware.client import Connection

    srv = serve("--lease-timeout", "0.2")
    ep = srv.endpoint
    silent: list[float] = []
    kill_to_stop: list[float] = []
    try:
        obs = Connection(ep, timeout=5.0)
        for k in range(trials):
            v = subprocess.Popen([sys.executable, "-c", VICTIM, ep, "0.8" if k % 2 == 0 else "-0.8"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
            assert v.stdout is not None and v.stdout.readline().strip() == "moving"
            while obs.next_state()["mode"] != "moving":
                continue
            n0 = len(obs.request("stats")["watchdog"])
            os.kill(v.pid, signal.SIGKILL)
            t_kill = time.monotonic()
            while obs.next_state()["mode"] != "stopped":
                continue
            t_seen = time.monotonic()
            ev = obs.request("stats")["watchdog"][n0:]
            silent.append(ev[0]["silent"])
            kill_to_stop.append(t_seen - t_kill)
            v.wait(timeout=10)
            # clear the latch for the next trial: take the freed lease, reset, go back
            while obs.state()["lease"] is not None:
                obs.next_state()
            obs.acquire()
            while True:
                try:
                    obs.request("reset")
                    break
                except Exception:  # noqa: BLE001 - BUSY while the stop decelerates
                    obs.next_state()
            obs.release()
        obs.close()
    finally:
        srv.stop()
    s = np.asarray(silent)
    within = int(np.sum(s <= 0.060))
    row = (f"| watchdog, {trials} SIGKILLs mid-motion (deadline 50 ms) | last message → stop command: "
           f"min {s.min() * 1e3:.1f}, p50 {np.median(s) * 1e3:.1f}, p99 {pct(s, 99) * 1e3:.1f}, "
           f"max {s.max() * 1e3:.1f} ms | **{within}/{trials} within 60 ms** | "
           f"kill → stop seen by an observer: p50 {np.median(kill_to_stop) * 1e3:.0f} ms, "
           f"max {max(kill_to_stop) * 1e3:.0f} ms |")
    print(row, flush=True)
    return [row]


# ---------------------------------------------------------------- 4. under 20 hammering clients
HAMMER = textwrap.dedent("""
    import os, secrets, sys, threading, msgpack, zmq
    endpoint, threads, stop_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    def hammer():
        s = zmq.Context.instance().socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.connect(endpoint)
        rid = secrets.randbits(40) << 20
        junk = [b"\\x81", b"\\xc1" * 7, msgpack.packb([1, 2, 3])]
        n = in_flight = 0
        while not os.path.exists(stop_file):
            rid += 1
            kind = n % 4
            op = ("state", "hello", None, "lease_acquire")[kind]
            m = junk[n % 3] if op is None else msgpack.packb({"v": 1, "op": op, "id": rid, "deadline": 1.0})
            s.send(m); n += 1; in_flight += 1
            while in_flight > 32 or s.poll(0):
                if s.poll(1000):
                    s.recv(); in_flight -= 1
                else:
                    in_flight = 0
    ts = [threading.Thread(target=hammer) for _ in range(threads)]
    [t.start() for t in ts]
    print("hammering", flush=True)
    [t.join() for t in ts]
""")


def _controller_round(conn: object, n: int, stops: int) -> tuple[np.ndarray, list[float]]:
    """``n`` state requests (round trip each), then ``stops`` moves stopped mid-way (stop -> state shows it)."""
    rtt = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        conn.request("state")  # type: ignore[attr-defined]
        rtt[i] = time.perf_counter() - t
    latencies = []
    for k in range(stops):
        q = np.asarray(conn.state()["q_cmd"])  # type: ignore[attr-defined]
        q[0] += 0.3 if k % 2 == 0 else -0.3
        conn.request("move_joints", {"q": q.tolist(), "speed": 0.3})  # type: ignore[attr-defined]
        while conn.next_state()["mode"] != "moving":  # type: ignore[attr-defined]
            continue
        t0 = time.perf_counter()
        conn.request("stop", {"reason": "bench"})  # type: ignore[attr-defined]
        while conn.next_state()["mode"] != "stopped":  # type: ignore[attr-defined]
            continue
        latencies.append(time.perf_counter() - t0)
        while True:
            try:
                conn.request("reset")  # type: ignore[attr-defined]
                break
            except Exception:  # noqa: BLE001 - BUSY while the stop decelerates
                conn.next_state()  # type: ignore[attr-defined]
    return rtt, latencies


def bench_hammer(n: int, stops: int, clients: int = 20, control: str = "thread",
                 figures: dict[str, float] | None = None) -> list[str]:
    from robocell.hardware.client import Connection

    rows = []
    with tempfile.TemporaryDirectory() as d:
        audit = Path(d) / "audit.jsonl"
        srv = serve("--watchdog", "2", "--lease-timeout", "3", "--audit", str(audit), "--control", control)
        stop_file = Path(d) / "stop"
        try:
            conn = Connection(srv.endpoint, timeout=20.0)
            conn.acquire()
            base_rtt, base_stop = _controller_round(conn, n, stops)
            s0 = conn.request("stats")["messages"]
            t0 = time.monotonic()
            procs = [subprocess.Popen([sys.executable, "-c", HAMMER, srv.endpoint, str(clients // 2), str(stop_file)],
                                      stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
            try:
                for p in procs:
                    assert p.stdout is not None and p.stdout.readline().strip() == "hammering"
                try:
                    ham_rtt, ham_stop = _controller_round(conn, n, stops)
                except Exception:
                    print("".join(ln for ln in audit.read_text().splitlines(True) if '"server"' in ln)[-3000:])
                    raise
                s1 = conn.request("stats")["messages"]
                seconds = time.monotonic() - t0
            finally:
                stop_file.write_text("stop")
                for p in procs:
                    p.wait(timeout=30)
            conn.close()
        finally:
            srv.stop()
    if figures is not None:
        figures.update(stop_p50=float(np.median(ham_stop)), stop_max=float(max(ham_stop)),
                       rtt_p99=pct(ham_rtt, 99))
    handled = (s1["accepted"] + s1["rejected"] + s1["rate_limited"]) - (s0["accepted"] + s0["rejected"] + s0["rate_limited"])
    rows.append(f"| `--control {control}`: controller `state` round trip, {n} requests | quiet p50 {np.median(base_rtt) * 1e6:.0f} µs, "
                f"p99 {pct(base_rtt, 99) * 1e6:.0f} µs | {clients} hammering p50 {np.median(ham_rtt) * 1e6:.0f} µs, "
                f"p99 {pct(ham_rtt, 99) * 1e6:.0f} µs | **p99 {pct(ham_rtt, 99) / pct(base_rtt, 99):.2f}×**, "
                f"p50 {np.median(ham_rtt) / np.median(base_rtt):.2f}× |")
    rows.append(f"| controller `stop` → state `stopped`, {stops} moves | quiet p50 {np.median(base_stop) * 1e3:.1f} ms, "
                f"max {max(base_stop) * 1e3:.1f} ms | hammering p50 {np.median(ham_stop) * 1e3:.1f} ms, "
                f"max {max(ham_stop) * 1e3:.1f} ms | **max {max(ham_stop) / max(base_stop):.2f}×**, "
                f"p50 {np.median(ham_stop) / np.median(base_stop):.2f}× |")
    rows.append(f"| hammering traffic the server handled | {handled} requests in {seconds:.1f} s "
                f"({handled / seconds:.0f}/s; {s1['rate_limited'] - s0['rate_limited']} rate-limited, "
                f"internal errors {s1['internal']}) | | |")
    for r in rows:
        print(r, flush=True)
    return rows


def bench_modes(seconds: float, n: int, stops: int) -> None:
    """Servo (pipelined, 1 kHz) and stop under 20 hammering clients, ``--control thread`` vs ``process``."""
    figs: dict[str, dict[str, float]] = {"thread": {}, "process": {}}
    for control in ("thread", "process"):
        bench_servo(seconds, True, control=control, figures=figs[control])
    print("| under attack | without hammering | with 20 hammering clients | ratio |")
    print("|---|---|---|---|")
    for control in ("thread", "process"):
        bench_hammer(n, stops, control=control, figures=figs[control])
    t, p = figs["thread"], figs["process"]
    print(f"| process vs thread | servo applied at the next tick {100 * p['servo_next_tick']:.2f} % vs "
          f"{100 * t['servo_next_tick']:.2f} % (missed: {(1 - p['servo_next_tick']) / max(1e-9, 1 - t['servo_next_tick']):.2f}×) | "
          f"stop under hammering p50 {p['stop_p50'] * 1e3:.1f} vs {t['stop_p50'] * 1e3:.1f} ms "
          f"(**{p['stop_p50'] / t['stop_p50']:.2f}×**), max {p['stop_max'] * 1e3:.1f} vs {t['stop_max'] * 1e3:.1f} ms "
          f"({p['stop_max'] / t['stop_max']:.2f}×) | controller p99 {p['rtt_p99'] * 1e3:.2f} vs "
          f"{t['rtt_p99'] * 1e3:.2f} ms |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    ap.add_argument("--only", choices=["rtt", "servo", "watchdog", "hammer", "modes"], help="run one section")
    ap.add_argument("--seconds", type=float, default=None, help="servo stream length (modes; default 10, quick 2)")
    a = ap.parse_args()
    if a.only == "modes":
        print(f"load average before: {os.getloadavg()}")
        bench_modes(a.seconds or (2.0 if a.quick else 10.0), 500 if a.quick else 3000, 5 if a.quick else 20)
        print(f"load average after: {os.getloadavg()}")
        return
    if a.only == "hammer":
        print("| under attack | without hammering | with 20 hammering clients | ratio |")
        print("|---|---|---|---|")
        bench_hammer(500 if a.quick else 3000, 5 if a.quick else 20)
        return
    from robocell.hardware.security import generate

    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as d:
        generate(Path(d))
        print("| round trip | robocell p50 µs | p99 µs | raw pyzmq p50 µs | p99 µs | ratio p50 | ratio p99 |")
        print("|---|---|---|---|---|---|---|")
        bench_rtt(500 if a.quick else 3000, Path(d))
    for pipelined in (False, True):
        bench_servo(2.0 if a.quick else 10.0, pipelined)
    bench_servo(2.0 if a.quick else 10.0, True, synced=True)
    bench_watchdog(5 if a.quick else 50)
    print("| under attack | without hammering | with 20 hammering clients | ratio |")
    print("|---|---|---|---|")
    bench_hammer(500 if a.quick else 3000, 5 if a.quick else 20)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
