"""robocell.hardware: real arms behind the core Arm and Gripper contracts.

The ZeroMQ driver server and remote client (``tcp://host:port`` backends)
live here; see the hardware issue for their protocol and safety design.
"""
