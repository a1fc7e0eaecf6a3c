"""A human-like scripted demonstration: put red_block into slot 2 of the tray.

    robocell record --cell examples/cells/tabletop.yaml --script examples/demos/pick_place_demo.py --out demo.npz

The motion is not the built-in pick/place skills: a curved, unevenly timed
path with a millimetre of tremor and hesitations at the gripper (see
robocell.recording.demo_scripts).  The seed makes each recording reproducible.
"""

import numpy as np

from robocell import Cell
from robocell.recording.demo_scripts import human_like_pick_place, slot_release

SEED = 7


def demonstrate(cell: Cell) -> None:
    release = slot_release(cell, "red_block", "tray.slot2")
    human_like_pick_place(cell, "red_block", release, rng=np.random.default_rng(SEED))
    p = cell.object_pose("red_block").t
    print(f"red_block released at ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) m; tray.slot2 is at "
          f"{np.round(cell.frame('tray.slot2').t, 3)} m")
