"""The measured attacks of issue 12 (A-F), replayed against `robocell serve`: what each costs now.

For each attack: the server's answer, the time the command thread spent on it (from
sending to the reply, or to the next reply when there is none), the server's RSS growth
(/proc), and whether it still answers. Baseline in the same run: the round trip of one
`hello` on the same socket before the attacks.

Run: .venv/bin/python benchmarks/bench_attacks.py
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq

from robocell.hardware.spawn import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
CELL = ROOT / "examples" / "cells" / "tabletop.yaml"
MB = 1024 * 1024


class Raw:
    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(endpoint)
        self.ids = itertools.count(secrets.randbits(40) << 20)
        self.lease: str | None = None

    def msg(self, op: str, args: dict[str, Any] | None = None) -> bytes:
        m: dict[str, Any] = {"v": 1, "op": op, "id": next(self.ids), "deadline": 5.0}
        if self.lease:
            m["lease"] = self.lease
        if args is not None:
            m["args"] = args
        return msgpack.packb(m)

    def recv(self, timeout: float = 60.0) -> dict[str, Any]:
        if not self.s.poll(int(timeout * 1000)):
            raise TimeoutError("no reply")
        out: dict[str, Any] = msgpack.unpackb(self.s.recv())
        return out

    def call(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        self.s.send(self.msg(op, args))
        return self.recv()

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def rss(srv: ServerProcess) -> int:
    assert srv.proc is not None
    for line in Path(f"/proc/{srv.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def timed(c: Raw, *frames: bytes) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    c.s.send_multipart(list(frames))
    rep = c.recv()
    return time.perf_counter() - t, rep


def row(name: str, seconds: float, base: float, grown: int, answer: str, alive: bool) -> None:
    print(f"| {name} | {answer} | {seconds * 1e3:.1f} ms ({seconds / base:.0f}× a hello) | "
          f"{grown / MB:+.0f} MB | {'yes' if alive else '**no**'} |", flush=True)


def alive(srv: ServerProcess) -> bool:
    c = Raw(srv.endpoint)
    try:
        return bool(c.call("hello")["ok"] and c.call("state")["ok"])
    finally:
        c.close()


def reset(srv: ServerProcess) -> None:
    c = Raw(srv.endpoint)
    try:
        c.lease = c.call("lease_acquire")["result"]["token"]
        while c.call("state")["result"]["mode"] != "idle":
            c.call("reset")
        c.call("lease_release")
    finally:
        c.close()


def main() -> None:
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as d:
        audit = Path(d) / "audit.jsonl"
        srv = ServerProcess(CELL, "--audit", str(audit), "--watchdog", "0.5", cwd=ROOT).start(timeout=90)
        try:
            c = Raw(srv.endpoint)
            base = float(np.median([timed(c, c.msg("hello"))[0] for _ in range(200)]))
            print(f"baseline: hello round trip {base * 1e6:.0f} µs (median of 200)")
            print("| attack | answer | time to the answer | server RSS | still serves |")
            print("|---|---|---|---|---|")
            # A
            attack = (b"\x84" + msgpack.packb("v") + b"\x91" * 1000 + b"\xc0" + msgpack.packb("op")
                      + msgpack.packb("hello") + msgpack.packb("id") + msgpack.packb(1) + msgpack.packb("deadline")
                      + msgpack.packb(1.0))
            r0 = rss(srv)
            t, rep = timed(c, attack)
            row("A. `v` nested 1,000 deep (1 KB)", t, base, rss(srv) - r0, rep["code"], alive(srv))
            # B
            r0 = rss(srv)
            st0 = c.call("stats")["result"]
            t0 = time.perf_counter()
            window = 0
            for i in range(20_000):
                c.s.send(c.msg("stop", {"reason": f"attack {i} " + "x" * 150}))
                window += 1
                if window >= 200:
                    c.recv()
                    window -= 1
            for _ in range(window):
                c.recv()
            t = time.perf_counter() - t0
            state = c.call("state")["result"]
            st1 = c.call("stats")["result"]
            size = len(msgpack.packb(state))
            row(f"B. 20,000 stops with distinct reasons → state message {size} bytes, "
                f"{len(state['faults'])} fault entries; control ticks meanwhile {st1['ticks'] - st0['ticks']} "
                f"({st1['late_ticks'] - st0['late_ticks']} late), longest {st1['tick_max'] * 1e3:.0f} ms",
                t, base, rss(srv) - r0, "OK ×20,000", alive(srv))
            reset(srv)
            # C
            c.lease = c.call("lease_acquire")["result"]["token"]
            q = c.call("state")["result"]["q_cmd"]
            q1 = list(q)
            q1[0] += 0.3
            for name, op, args in (("C. move_joints speed=1e-5", "move_joints", {"q": q1, "speed": 1e-5}),
                                   ("C. move_joints speed=5e-324", "move_joints", {"q": q1, "speed": 5e-324}),
                                   ("C. follow t=[0, 1e300]", "follow", {"t": [0.0, 1e300], "q": [q, q]})):
                r0 = rss(srv)
                t, rep = timed(c, c.msg(op, args))
                row(name, t, base, rss(srv) - r0, rep["code"], alive(srv))
            c.call("lease_release")
            c.lease = None
            # D is a correctness property (tests/hardware/test_chaos.py), not a cost
            # E
            r0 = rss(srv)
            other = Raw(srv.endpoint)
            other.call("hello")  # connected before the attack
            t0 = time.perf_counter()
            c.s.send_multipart([b""] * 1_000_000)
            t_sent = time.perf_counter()
            other.s.send(other.msg("hello"))  # another client, right behind the attack
            other.recv()
            t_other = time.perf_counter()
            rep = c.recv()
            other.close()
            row(f"E. one message of 1,000,000 empty frames (the client took {(t_sent - t0) * 1e3:.0f} ms to send it; "
                f"another client's hello sent right after waited {(t_other - t_sent) * 1e3:.0f} ms)",
                time.perf_counter() - t0, base, rss(srv) - r0, rep["code"], alive(srv))
            sender = ("import sys, zmq\nctx = zmq.Context(); s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0)\n"
                      "s.setsockopt(zmq.SNDTIMEO, 20000); s.connect(sys.argv[1])\nf = b'\\x80' * int(7.9e6)\n"
                      "for _ in range(100):\n    try:\n        s.send(f)\n    except zmq.Again:\n        break\n")
            r0 = rss(srv)
            peak = r0
            t0 = time.perf_counter()
            ps = [subprocess.Popen([sys.executable, "-c", sender, srv.endpoint]) for _ in range(4)]
            while any(p.poll() is None for p in ps):
                peak = max(peak, rss(srv))
                time.sleep(0.01)  # sampling the RSS while the senders run
            t = time.perf_counter() - t0
            after = rss(srv)
            row(f"E. 4 senders × 100 frames of 7.9 MB (peak {(peak - r0) / MB:+.0f} MB)", t, base, after - r0,
                "dropped by ZMQ_MAXMSGSIZE", alive(srv))
            # F
            size0 = audit.stat().st_size
            rng = np.random.default_rng(1)
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < 5.0:
                for _ in range(100):
                    c.s.send(rng.bytes(int(rng.integers(1, 200))))
                for _ in range(100):
                    c.recv()
                n += 100
            t = time.perf_counter() - t0
            time.sleep(1.5)  # the summaries come within a second
            grown = audit.stat().st_size - size0
            print(f"| F. garbage for {t:.1f} s ({n} messages, {n / t:.0f}/s) | audit grew {grown} bytes "
                  f"({grown / t / 1024:.1f} KiB/s) | | | {'yes' if alive(srv) else '**no**'} |")
            c.close()
        finally:
            srv.stop()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
