"""A controlling client that starts a long motion and then waits to be killed.

``python -m tests.hardware.victim CELL ENDPOINT [servo]`` prints ``moving`` once
the motion (or a servo stream, fed by a thread) runs, then blocks on stdin.
"""

from __future__ import annotations

import sys
import threading


from robocell.cell import Cell


def main() -> None:
    cell_path, endpoint = sys.argv[1], sys.argv[2]
    servo = len(sys.argv) > 3 and sys.argv[3] == "servo"
    cell = Cell.load(cell_path, endpoint)
    arm = cell.arm()
    q = arm.state().q.copy()
    if servo:
        def stream() -> None:
            target = q.copy()
            while True:
                target[0] += 0.0004  # 0.4 rad/s at 1 kHz
                arm.servo(target, dt=0.001)

        threading.Thread(target=stream, daemon=True).start()
        arm.conn.next_state()  # type: ignore[attr-defined]
    else:
        q[0] += 1.5
        arm.move_joints(q, wait=False, speed=0.3)
    print("moving", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
