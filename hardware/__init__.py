"""robocell.hardware: real arms behind the core Arm and Gripper contracts.

- :mod:`~robocell.hardware.server` — ``ArmServer`` (``robocell serve``): the
  safety authority between the network and one arm's driver;
- :mod:`~robocell.hardware.remote` — ``RemoteArm``, ``RemoteGripper`` and the
  ``tcp://host:port`` backend used by ``Cell.load`` and ``robocell run``;
- :mod:`~robocell.hardware.driver` — the narrow ``Driver`` protocol and its
  registry (``sim``, ``ur_rtde``, or a ``robocell.drivers`` entry point).

The wire protocol is documented in docs/protocol.md.  Nothing is imported
here at package import time: ``import robocell`` stays fast.
"""
