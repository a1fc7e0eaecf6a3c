"""The PyBullet world of one cell: the physics client, bodies and the clock.

Simulated time advances only when somebody waits (a blocking motion, a
handle's ``wait``/``done``, :meth:`SimWorld.wait`).  That keeps a run
deterministic for a given seed whatever the host's load, and lets it run
much faster than real time; ``realtime=True`` paces each step against the
wall clock instead (for watching in the GUI).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from spatialmath import SE3
from spatialmath.base import q2r, r2q

from robocell.errors import BackendError, ConfigError
from robocell.sim.gui import REMEDY, CameraView, camera_was_reset, display_held, frame_cell, set_camera, show_sliders

if TYPE_CHECKING:
    from robocell.cellfile.spec import CellSpec, FixtureSpec, ObjectSpec

REALTIME_SLIP = 0.05  # s behind the wall clock after which real-time pacing restarts from now
CAMERA_GUARD = 30.0  # s of wall time after framing during which a camera put back by PyBullet is reframed
CAMERA_GUARD_POLL = 0.25  # s of wall time between those checks
TIMESTEP = 1.0 / 240.0  # PyBullet's tuned default; contacts get unstable above it


def se3_from_pq(pos: Any, quat_xyzw: Any) -> SE3:
    """SE3 from PyBullet's position and (x, y, z, w) quaternion."""
    x, y, z, w = quat_xyzw
    return SE3.Rt(q2r([w, x, y, z]), np.asarray(pos, dtype=float), check=False)


def pq_from_se3(T: SE3) -> tuple[list[float], list[float]]:
    """PyBullet's (position, (x, y, z, w) quaternion) from an SE3."""
    q = r2q(T.R)  # (w, x, y, z)
    return list(map(float, T.t)), [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


@dataclass
class Controller:
    """Something that sets motor commands before each physics step."""

    pre_step: Callable[[float], None]


class SimWorld:
    """A cell built in PyBullet: table, arms, objects and fixtures."""

    def __init__(
        self,
        spec: CellSpec,
        *,
        seed: int | None = None,
        gui: bool = False,
        realtime: bool = False,
        timestep: float = TIMESTEP,
    ) -> None:
        import pybullet as pb

        self.pb = pb
        self.spec = spec
        self.timestep = timestep
        self.realtime = realtime
        self.time = 0.0
        self.seed = seed
        self.gui = gui
        self._view: CameraView | None = None  # the framed camera, in the GUI
        self._guard_until = self._next_guard_check = 0.0  # perf_counter s
        self._controllers: list[Controller] = []
        self._observers: list[Callable[[SimWorld], None]] = []
        self._closed = False
        #: touches of keep-out fixtures, (simulated time s, what touched, fixture), in order
        self.collisions: list[tuple[float, str, str]] = []
        if gui:
            # checked and held while connecting: without an X server PyBullet's C code calls exit(1)
            with display_held():
                self.client = pb.connect(pb.GUI)
        else:
            self.client = pb.connect(pb.DIRECT)
        if self.client < 0:
            raise BackendError(
                f"could not start the PyBullet GUI (is another PyBullet window open in this process?); {REMEDY}"
            )
        self._wall_start = time.perf_counter()
        c = self.client
        pb.resetSimulation(physicsClientId=c)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=timestep, deterministicOverlappingPairs=1, physicsClientId=c
        )
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        if gui:
            # The panel (camera previews, parameter list) is off while a run is watched: it
            # covers a third of the window and shows nothing of the cell.  Teleoperation turns
            # it on for its sliders (robocell.sim.gui.show_sliders).
            pb.configureDebugVisualizer(pb.COV_ENABLE_GUI, 0, physicsClientId=c)
        self._build_scene()
        if seed is not None:
            self.randomize(np.random.default_rng(seed))

    # ---- scene building -------------------------------------------------
    def _build_scene(self) -> None:
        """The table, the fixtures, the objects and the arms of the cell file, as PyBullet bodies."""
        pb, spec = self.pb, self.spec
        self.bodies: dict[str, int] = {}
        self._build_table()
        for fx in spec.fixtures:
            self.bodies[fx.name] = self._build_fixture(fx)
        for obj in spec.objects:
            self.bodies[obj.name] = self._build_object(obj)
        self.arm_bodies: dict[str, int] = {}
        for arm in spec.arms:
            model = arm.arm_model()
            pos, orn = pq_from_se3(arm.base.se3())
            body = pb.loadURDF(
                str(model.resolved_urdf()),
                pos,
                orn,
                useFixedBase=True,
                flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
                physicsClientId=self.client,
            )
            self.arm_bodies[arm.name] = body

    def _build_table(self) -> None:
        t = self.spec.table
        if t is None:
            return
        pb, c = self.pb, self.client
        half = [t.size[0] / 2, t.size[1] / 2, t.size[2] / 2]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(t.rgba), physicsClientId=c)
        body = pb.createMultiBody(
            0, col, vis, basePosition=[t.center[0], t.center[1], -half[2]], physicsClientId=c
        )
        pb.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=c)
        self.bodies["table"] = body

    def _build_object(self, obj: ObjectSpec) -> int:
        pb, c = self.pb, self.client
        if obj.shape == "box":
            half = [s / 2 for s in obj.size]
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(obj.rgba), physicsClientId=c)
        elif obj.shape == "cylinder":
            r, h = obj.size
            col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=r, height=h, physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=r, length=h, rgbaColor=list(obj.rgba), physicsClientId=c)
        else:
            mesh = str(obj.mesh)
            col = pb.createCollisionShape(pb.GEOM_MESH, fileName=mesh, meshScale=list(obj.size), physicsClientId=c)
            vis = pb.createVisualShape(pb.GEOM_MESH, fileName=mesh, meshScale=list(obj.size), rgbaColor=list(obj.rgba), physicsClientId=c)
        if col < 0:
            raise ConfigError(f"object '{obj.name}': PyBullet could not build its collision shape")
        pos, orn = pq_from_se3(obj.pose.se3())
        body = pb.createMultiBody(obj.mass, col, vis, basePosition=pos, baseOrientation=orn, physicsClientId=c)
        # Spinning/rolling friction keep a grasped block from pivoting between the pads.
        # Resting objects may sleep (Bullet deactivation): a touch wakes them, and an
        # idle block then costs the solver nothing, a third of a step's cost here.
        pb.changeDynamics(
            body, -1, lateralFriction=obj.friction, spinningFriction=0.002,
            rollingFriction=0.0001, activationState=pb.ACTIVATION_STATE_ENABLE_SLEEPING,
            physicsClientId=c,
        )
        return body

    def _build_fixture(self, fx: FixtureSpec) -> int:
        """A static open box (bin) or shallow box (tray) of five slabs, or a solid box (obstacle)."""
        pb, c = self.pb, self.client
        if fx.is_obstacle:
            return self._build_obstacle(fx)
        ix, iy, h = fx.size
        w = fx.wall
        slabs = [  # (half extents, centre) in the fixture frame; floor top at z=0
            ([ix / 2 + w, iy / 2 + w, w / 2], [0, 0, -w / 2]),
            ([w / 2, iy / 2 + w, h / 2], [ix / 2 + w / 2, 0, h / 2]),
            ([w / 2, iy / 2 + w, h / 2], [-ix / 2 - w / 2, 0, h / 2]),
            ([ix / 2, w / 2, h / 2], [0, iy / 2 + w / 2, h / 2]),
            ([ix / 2, w / 2, h / 2], [0, -iy / 2 - w / 2, h / 2]),
        ]
        col = pb.createCollisionShapeArray(
            [pb.GEOM_BOX] * 5, halfExtents=[s[0] for s in slabs],
            collisionFramePositions=[s[1] for s in slabs], physicsClientId=c,
        )
        vis = pb.createVisualShapeArray(
            [pb.GEOM_BOX] * 5, halfExtents=[s[0] for s in slabs],
            visualFramePositions=[s[1] for s in slabs], rgbaColors=[list(fx.rgba)] * 5,
            physicsClientId=c,
        )
        pos, orn = pq_from_se3(fx.pose.se3())
        # The floor's top sits at the fixture pose (slabs are offset below z=0 of the frame).
        body = pb.createMultiBody(0, col, vis, basePosition=[pos[0], pos[1], pos[2] + w], baseOrientation=orn, physicsClientId=c)
        pb.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=c)
        return body

    def _build_obstacle(self, fx: FixtureSpec) -> int:
        """One static box standing on the fixture pose (its base link is the box's centre)."""
        pb, c = self.pb, self.client
        half = [s / 2 for s in fx.size]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=list(fx.rgba), physicsClientId=c)
        pos, orn = pq_from_se3(fx.pose.se3() * SE3.Trans(0, 0, half[2]))
        body = pb.createMultiBody(0, col, vis, basePosition=pos, baseOrientation=orn, physicsClientId=c)
        pb.changeDynamics(body, -1, lateralFriction=0.8, physicsClientId=c)
        return body

    # ---- the window -------------------------------------------------------------
    def frame_camera(self, *, panel: bool = False) -> CameraView | None:
        """In the GUI, fit the cell (every body as it stands now) into the window; None in DIRECT mode."""
        if not self.gui:
            return None
        self._view = frame_cell(self.pb, [*self.bodies.values(), *self.arm_bodies.values()], self.client,
                                panel=panel)
        self._guard_until = time.perf_counter() + CAMERA_GUARD
        return self._view

    def _guard_camera(self) -> None:
        """PyBullet's window start-up can put its camera back after the cell was framed: undo that
        (only that: a camera the user moved with the mouse is theirs) for a while after framing."""
        now = time.perf_counter()
        if self._view is None or now > self._guard_until or now < self._next_guard_check:
            return
        self._next_guard_check = now + CAMERA_GUARD_POLL
        if self.pb.isConnected(physicsClientId=self.client) and camera_was_reset(self.pb, self.client):
            set_camera(self.pb, self._view, self.client)

    def show_panel(self) -> None:
        """Show the GUI's parameter panel (teleoperation sliders) and frame the cell beside it."""
        if not self.gui:
            raise BackendError("the parameter panel needs the PyBullet GUI; start the cell with --gui")
        show_sliders(self.pb, self.client)
        self.frame_camera(panel=True)

    # ---- state ------------------------------------------------------------
    def object_pose(self, name: str) -> SE3:
        """World pose of an object, read from physics."""
        body = self._object_body(name)
        if self._closed or not self.pb.isConnected(physicsClientId=self.client):
            raise BackendError(f"cannot read the pose of '{name}': the simulation was closed "
                               "(was the GUI window closed?)")
        pos, orn = self.pb.getBasePositionAndOrientation(body, physicsClientId=self.client)
        return se3_from_pq(pos, orn)

    def set_object_pose(self, name: str, pose: SE3) -> None:
        """Place an object (scene set-up only, e.g. randomisation; never during a grasp)."""
        body = self._object_body(name)
        pos, orn = pq_from_se3(pose)
        self.pb.resetBasePositionAndOrientation(body, pos, orn, physicsClientId=self.client)
        self.pb.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0], physicsClientId=self.client)

    def _object_body(self, name: str) -> int:
        if name not in self.bodies or name == "table" or name in {f.name for f in self.spec.fixtures}:
            known = ", ".join(o.name for o in self.spec.objects) or "(none)"
            raise ConfigError(f"unknown object '{name}'; the cell's objects are: {known}")
        return self.bodies[name]

    def randomize(self, rng: np.random.Generator) -> dict[str, SE3]:
        """Move every object with a ``randomize`` region to a random pose in it, then let them settle."""
        poses: dict[str, SE3] = {}
        for obj in self.spec.objects:
            base = obj.pose.se3()
            r = obj.randomize
            if r is None:
                poses[obj.name] = base
                continue
            dx = rng.uniform(*r.x)
            dy = rng.uniform(*r.y)
            dyaw = rng.uniform(*r.yaw)
            pose = SE3.Trans(dx, dy, 0.0) * base * SE3.Rz(dyaw)
            poses[obj.name] = pose
            self.set_object_pose(obj.name, pose)
        self.settle()
        return poses

    def settle(self, seconds: float = 0.2) -> None:
        """Let resting contacts settle before anything moves."""
        self.step(int(round(seconds / self.timestep)))

    # ---- clock ---------------------------------------------------------------
    def add_controller(self, ctrl: Controller) -> None:
        self._controllers.append(ctrl)

    def add_observer(self, fn: Callable[[SimWorld], None]) -> None:
        """Call ``fn(world)`` after every step (recorders, loggers)."""
        self._observers.append(fn)

    def remove_observer(self, fn: Callable[[SimWorld], None]) -> None:
        """Stop calling ``fn`` (a no-op if it is not registered)."""
        if fn in self._observers:
            self._observers.remove(fn)

    def step(self, n: int = 1) -> None:
        """Advance physics by ``n`` steps, running controllers before each."""
        if self._closed:
            raise BackendError("the simulation was closed; load the cell again")
        pb, c = self.pb, self.client
        for _ in range(n):
            for ctrl in self._controllers:
                ctrl.pre_step(self.time)
            pb.stepSimulation(physicsClientId=c)
            self.time += self.timestep
            for obs in self._observers:
                obs(self)
            if self.gui:
                self._guard_camera()
            if self.realtime:
                now = time.perf_counter()
                lag = self.time - (now - self._wall_start)
                if lag > 0:
                    time.sleep(lag)
                elif lag < -REALTIME_SLIP:
                    # fell behind the clock (scene set-up, a slow host, a breakpoint): pace from
                    # here on rather than racing faster than real time to catch up
                    self._wall_start = now - self.time

    def wait(self, seconds: float) -> None:
        """Let simulated time pass (the arm holds its position)."""
        if not (np.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"wait: seconds = {seconds!r} must be a finite number >= 0")
        self.step(int(round(seconds / self.timestep)))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # the user may already have closed the GUI window, which disconnects
            if self.pb.isConnected(physicsClientId=self.client):
                self.pb.disconnect(physicsClientId=self.client)
