"""Built-in arm models and the URDF that both the simulator and IK load.

A model names its URDF, its joints, its tool-centre-point link and its
parallel-gripper finger joints.  :meth:`ArmModel.resolved_urdf` writes one
self-contained copy of the URDF (mesh paths made absolute) to a cache folder;
PyBullet and roboticstoolbox both load *that file*, so simulation and
kinematics can never drift apart.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from robocell.errors import ConfigError


def pybullet_data_path() -> Path:
    """Folder of the models that ship with pybullet (imported lazily)."""
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def _cache_dir() -> Path:
    root = os.environ.get("ROBOCELL_CACHE") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path(tempfile.gettempdir())
    d = base / "robocell-models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _absolutise_meshes(text: str, folder: Path) -> str:
    """Make every mesh filename absolute so the URDF can live anywhere.

    pybullet's Panda uses ``package://meshes/...`` and its iiwa plain relative
    paths; xacro (inside roboticstoolbox) cannot resolve either without a ROS
    package index, so both become absolute file paths.
    """

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("package://"):
            name = name[len("package://") :]
        p = Path(name)
        if not p.is_absolute():
            p = folder / p
        return f'filename="{p.as_posix()}"'

    return re.sub(r'filename="([^"]+)"', repl, text)


def _write_cached(stem: str, text: str) -> Path:
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = _cache_dir() / f"{stem}-{digest}.urdf"
    if not path.exists():
        # write-then-rename: parallel evaluation workers may race here
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class ArmModel:
    """Static description of an arm with a parallel gripper."""

    name: str
    source_urdf: str  # path, or relative to pybullet_data when not absolute
    base_link: str
    tcp_link: str
    joint_names: tuple[str, ...]
    finger_joints: tuple[str, ...]
    finger_travel: float  # max opening of ONE finger joint, m; width = sum of fingers
    home: tuple[float, ...]
    gripper_force: float = 40.0  # N per finger, default closing force
    extra_urdf: str = field(default="", repr=False)  # links appended before </robot>

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @property
    def max_width(self) -> float:
        return self.finger_travel * len(self.finger_joints)

    def resolved_urdf(self) -> Path:
        """The single URDF file the simulator and IK both load."""
        src = Path(self.source_urdf)
        if not src.is_absolute():
            src = pybullet_data_path() / src
        if not src.is_file():
            raise ConfigError(
                f"arm model '{self.name}': URDF file {src} does not exist; "
                "give an existing path in the cell file's 'urdf' field"
            )
        text = _absolutise_meshes(src.read_text(), src.parent)
        if self.extra_urdf:
            text = text.replace("</robot>", self.extra_urdf + "\n</robot>")
        return _write_cached(f"{self.name}", text)


# A simple parallel-jaw gripper bolted to the iiwa flange, so the KUKA cell
# proves nothing in robocell depends on the Panda's hand.  Friction and
# contact parameters match the Panda fingers so grasps are physical.
_IIWA_GRIPPER = """
  <joint name="iiwa_hand_joint" type="fixed">
    <parent link="lbr_iiwa_link_7"/>
    <child link="iiwa_hand"/>
    <origin rpy="0 0 0" xyz="0 0 0.045"/>
  </joint>
  <link name="iiwa_hand">
    <inertial><origin xyz="0 0 0.02"/><mass value="0.5"/>
      <inertia ixx="0.0009" ixy="0" ixz="0" iyy="0.0002" iyz="0" izz="0.0009"/></inertial>
    <visual><origin xyz="0 0 0.02"/><geometry><box size="0.05 0.14 0.04"/></geometry>
      <material name="iiwa_hand_grey"><color rgba="0.3 0.3 0.3 1"/></material></visual>
    <collision><origin xyz="0 0 0.02"/><geometry><box size="0.05 0.14 0.04"/></geometry></collision>
  </link>
  <link name="iiwa_leftfinger">
    <contact><friction_anchor/><lateral_friction value="1.0"/><spinning_friction value="0.1"/></contact>
    <inertial><origin xyz="0 0.006 0.03"/><mass value="0.05"/>
      <inertia ixx="0.00002" ixy="0" ixz="0" iyy="0.00002" iyz="0" izz="0.000005"/></inertial>
    <visual><origin xyz="0 0.006 0.03"/><geometry><box size="0.02 0.012 0.06"/></geometry>
      <material name="iiwa_finger_grey"><color rgba="0.6 0.6 0.6 1"/></material></visual>
    <collision><origin xyz="0 0.006 0.03"/><geometry><box size="0.02 0.012 0.06"/></geometry></collision>
  </link>
  <link name="iiwa_rightfinger">
    <contact><friction_anchor/><lateral_friction value="1.0"/><spinning_friction value="0.1"/></contact>
    <inertial><origin xyz="0 -0.006 0.03"/><mass value="0.05"/>
      <inertia ixx="0.00002" ixy="0" ixz="0" iyy="0.00002" iyz="0" izz="0.000005"/></inertial>
    <visual><origin xyz="0 -0.006 0.03"/><geometry><box size="0.02 0.012 0.06"/></geometry>
      <material name="iiwa_finger_grey"><color rgba="0.6 0.6 0.6 1"/></material></visual>
    <collision><origin xyz="0 -0.006 0.03"/><geometry><box size="0.02 0.012 0.06"/></geometry></collision>
  </link>
  <joint name="iiwa_finger_joint1" type="prismatic">
    <parent link="iiwa_hand"/><child link="iiwa_leftfinger"/>
    <origin rpy="0 0 0" xyz="0 0 0.04"/><axis xyz="0 1 0"/>
    <limit effort="40" lower="0.0" upper="0.045" velocity="0.2"/>
  </joint>
  <joint name="iiwa_finger_joint2" type="prismatic">
    <parent link="iiwa_hand"/><child link="iiwa_rightfinger"/>
    <origin rpy="0 0 0" xyz="0 0 0.04"/><axis xyz="0 -1 0"/>
    <limit effort="40" lower="0.0" upper="0.045" velocity="0.2"/>
  </joint>
  <link name="iiwa_grasptarget">
    <inertial><mass value="0.0"/><inertia ixx="0" ixy="0" ixz="0" iyy="0" iyz="0" izz="0"/></inertial>
  </link>
  <joint name="iiwa_grasptarget_hand" type="fixed">
    <parent link="iiwa_hand"/><child link="iiwa_grasptarget"/>
    <origin rpy="0 0 0" xyz="0 0 0.085"/>
  </joint>
"""

BUILTIN_MODELS: dict[str, ArmModel] = {
    "panda": ArmModel(
        name="panda",
        source_urdf="franka_panda/panda.urdf",
        base_link="panda_link0",
        tcp_link="panda_grasptarget",
        joint_names=tuple(f"panda_joint{i}" for i in range(1, 8)),
        finger_joints=("panda_finger_joint1", "panda_finger_joint2"),
        finger_travel=0.04,
        home=(0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785),
        gripper_force=40.0,
    ),
    "kuka_iiwa": ArmModel(
        name="kuka_iiwa",
        source_urdf="kuka_iiwa/model.urdf",
        base_link="lbr_iiwa_link_0",
        tcp_link="iiwa_grasptarget",
        joint_names=tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8)),
        finger_joints=("iiwa_finger_joint1", "iiwa_finger_joint2"),
        finger_travel=0.045,
        home=(0.0, 0.5, 0.0, -1.6, 0.0, 1.04, 0.0),
        gripper_force=40.0,
        extra_urdf=_IIWA_GRIPPER,
    ),
    # UR5e + Robotiq 2F-85-sized gripper; the URDF ships with robocell (see its header for sources).
    # base_link is the UR controller's base frame, so getActualTCPPose and FK agree.
    "ur5e": ArmModel(
        name="ur5e",
        source_urdf=str(Path(__file__).resolve().parent / "models" / "ur5e.urdf"),
        base_link="base_link",
        tcp_link="grasp_target",
        joint_names=(
            "shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
            "wrist_1_joint", "wrist_2_joint", "wrist_3_joint",
        ),
        finger_joints=("robotiq_left_finger_joint", "robotiq_right_finger_joint"),
        finger_travel=0.0425,
        # elbow up, tool pointing straight down, in front of the base (the arm reaches along -x at q1=0)
        home=(3.1416, -1.9, 1.9, -1.5708, -1.5708, 0.0),
        gripper_force=40.0,
    ),
}


def get_model(name: str) -> ArmModel:
    """Look up a built-in arm model by name, with a message listing the others."""
    try:
        return BUILTIN_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise ConfigError(
            f"unknown arm model '{name}'; built-in models are: {known}. "
            "For another arm give 'urdf', 'tcp_link', 'joints' and 'finger_joints' in the cell file."
        ) from None
