"""A human-like scripted demonstration for the wall cell: carry red_block OVER the wall into tray slot 2.

    robocell record --cell examples/cells/wall.yaml --script examples/demos/over_wall_demo.py --out wall.npz
    robocell learn wall.npz --name carry_over_wall --description "carry the block over the wall into the tray"

A straight carry would hit the wall (a keep-out obstacle: touching it latches a
protective stop); the demonstration lifts the block 10 cm higher over the
middle of the carry, and the learned skill keeps that shape wherever the block
and the tray are.
"""

import numpy as np

from robocell import Cell
from robocell.recording.demo_scripts import human_like_pick_place, slot_release

SEED = 100


def demonstrate(cell: Cell) -> None:
    release = slot_release(cell, "red_block", "tray.slot2")
    human_like_pick_place(cell, "red_block", release, rng=np.random.default_rng(SEED), lift=0.10)
    cell.wait(0.3)
    p = cell.object_pose("red_block").t
    print(f"red_block released at ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) m over the wall")
