"""Collision detection on keep-out fixtures: a simulated safety-rated keep-out zone.

A real cell stops the arm when it touches something it must not (the arm's
own collision detection, or a safety controller's keep-out zone).  Here a
world observer asks PyBullet, after every physics step, for the contacts of
each keep-out fixture -- one ``getContactPoints(bodyA=fixture)`` per keep-out
fixture per step, which costs next to nothing when nothing touches -- and
reports any NEW touch by an arm link, a finger or an object (anything but the
table the fixture stands on):

* it is recorded in ``world.collisions`` as (time, what, fixture), so tests
  and benchmarks can count collisions;
* ``on_collision(fault)`` is called with a fault that names what touched what,
  ``collision: red_block touched keep-out fixture 'wall'``; the sim backend
  latches a protective stop on every arm with it.

A touch is reported once when it starts: a block left leaning on a wall does
not stop the arm again after a reset, and the arm can be reset and moved away
from the wall it touched, as on a real cell.  Touching again after the bodies
separated is a new collision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robocell.sim.world import SimWorld

#: m: contact points farther apart than this are not a touch.  Bullet keeps a
#: contact manifold's points until the bodies are its breaking threshold apart
#: (2 cm), so "a contact point exists" alone would report near misses.
TOUCH_DISTANCE = 0.001


class KeepOutMonitor:
    """A SimWorld observer that detects touches of the cell's keep-out fixtures."""

    def __init__(self, world: SimWorld, on_collision: Callable[[str], None]) -> None:
        self.world = world
        self.on_collision = on_collision
        self.fixtures: list[tuple[int, str]] = [
            (world.bodies[f.name], f.name) for f in world.spec.fixtures if f.keep_out
        ]
        self._ignore = {world.bodies["table"]} if "table" in world.bodies else set()
        self._touching: set[tuple[int, int, int]] = set()  # (fixture body, other body, its link)
        self._names: dict[tuple[int, int], str] = {}

    def __call__(self, world: SimWorld) -> None:
        pb, c = world.pb, world.client
        now: set[tuple[int, int, int]] = set()
        for body, _ in self.fixtures:
            for cp in pb.getContactPoints(bodyA=body, physicsClientId=c):
                if cp[8] <= TOUCH_DISTANCE and cp[2] not in self._ignore:
                    now.add((body, cp[2], cp[4]))
        if not now and not self._touching:
            return  # the common case: nothing near any keep-out fixture
        new = sorted(now - self._touching)
        self._touching = now
        for fixture_body, other, link in new:
            fixture = next(name for b, name in self.fixtures if b == fixture_body)
            what = self.name_of(other, link)
            world.collisions.append((world.time, what, fixture))
            self.on_collision(f"collision: {what} touched keep-out fixture '{fixture}'")

    def name_of(self, body: int, link: int) -> str:
        """``red_block``, ``panda link panda_hand``, or ``body 7`` (cached: link names never change)."""
        key = (body, link)
        if key not in self._names:
            self._names[key] = self._describe(body, link)
        return self._names[key]

    def _describe(self, body: int, link: int) -> str:
        w = self.world
        for name, b in w.bodies.items():
            if b == body:
                return name
        for name, b in w.arm_bodies.items():
            if b == body:
                pb, c = w.pb, w.client
                if link < 0:
                    link_name = pb.getBodyInfo(b, physicsClientId=c)[0].decode()
                else:
                    link_name = pb.getJointInfo(b, link, physicsClientId=c)[12].decode()
                return f"{name} link {link_name}"
        return f"body {body}"
