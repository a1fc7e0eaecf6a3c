"""Arm drivers for ArmServer: one module each, registered in robocell.hardware.driver."""
