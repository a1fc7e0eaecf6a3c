"""A skill script: the same file runs in simulation and, later, on a real arm.

    robocell run examples/pick_place_script.py --cell examples/cells/tabletop.yaml
    robocell run examples/pick_place_script.py --cell examples/cells/tabletop.yaml --backend tcp://arm-host:5555
"""

from robocell import Cell
from robocell.skills import Skills


def main(cell: Cell) -> None:
    s = Skills(cell)
    s.pick("green_block")
    s.place("tray.slot2")
    # the script may also talk to the arm contract directly
    arm = cell.arm()
    above = cell.frame("tray.slot2")
    print(f"green block is in the tray at {cell.object_pose('green_block').t.round(3)} m; slot at {above.t.round(3)} m")
    s.home()
    print(f"arm back home, TCP at {arm.state().tcp.t.round(3)} m")
