"""A controlling client that starts a long motion and then waits to be killed (or frozen).

``python -m tests.hardware.victim CELL ENDPOINT [motion|servo] [liveness|heartbeat]`` prints
``moving`` once the motion (or a servo stream, fed by a thread) runs, then blocks on stdin.
``heartbeat`` keeps the lease with application heartbeats (the server's ``--watchdog``)
instead of a liveness connection (its ``--liveness``).
"""

from __future__ import annotations

import sys
import threading


from robocell.core.cell import Cell


def main() -> None:
    cell_path, endpoint = sys.argv[1], sys.argv[2]
    servo = len(sys.argv) > 3 and sys.argv[3] == "servo"
    liveness = not (len(sys.argv) > 4 and sys.argv[4] == "heartbeat")
    cell = Cell.load(cell_path, endpoint, liveness=liveness)
    arm = cell.arm()
    q = arm.state().q.copy()
    if servo:
        started = threading.Event()

        def stream() -> None:
            target = q.copy()
            while True:
                target[0] += 0.0004  # 0.4 rad/s at 1 kHz
                arm.servo(target, dt=0.001)  # type: ignore[call-arg]
                started.set()

        threading.Thread(target=stream, daemon=True).start()
        started.wait(timeout=30)  # the thread owns the connection from here on
    else:
        q[0] += 1.5
        arm.move_joints(q, wait=False, speed=0.3)
    print("moving", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
