"""The demonstration file contract: every broken file ends in a DemoError that says what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spatialmath import SE3

from robocell.cellfile.spec import load_cell_spec
from robocell.recording.demonstration import Demonstration, Provenance
from robocell.errors import DemoError

from tests.conftest import KUKA, TABLETOP

JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


def _demo(n: int = 40) -> Demonstration:
    t = np.arange(n) * 0.01
    width = np.where(t < 0.15, 0.08, np.where(t < 0.3, 0.04, 0.08))
    tcp = np.repeat(np.eye(4)[None], n, axis=0)
    tcp[:, 0, 3] = np.linspace(0.3, 0.5, n)
    prov = Provenance(cell="tabletop", arm="panda", arm_model="panda", joint_names=JOINTS,
                      date="2026-01-01T00:00:00+00:00", source="test", backend="sim",
                      robocell_version="0.1.0", rate=100.0)
    return Demonstration(t=t, q=np.zeros((n, 7)), tcp=tcp, gripper_width=width, grasped=width < 0.05,
                         objects={"red_block": SE3.Trans(0.45, -0.25, 0.02)},
                         objects_end={"red_block": SE3.Trans(0.66, 0.12, 0.03)},
                         fixtures={"tray": SE3.Trans(0.66, 0.12, 0.0)}, provenance=prov)


def _rewrite(tmp_path: Path, **changes: object) -> Path:
    """Save a good demonstration, then rewrite it with some arrays changed (None deletes one)."""
    good = _demo().save(tmp_path / "good.npz")
    with np.load(good, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            del data[k]
        else:
            data[k] = v  # type: ignore[assignment]
    out = tmp_path / "bad.npz"
    np.savez(out, **data)  # type: ignore[arg-type]
    return out


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    d = _demo()
    e = Demonstration.load(d.save(tmp_path / "d.npz"))
    for name in ("t", "q", "tcp", "gripper_width", "grasped"):
        assert np.array_equal(getattr(d, name), getattr(e, name)), name
    assert e.provenance == d.provenance and e.events == d.events
    assert [ev.kind for ev in e.events] == ["close", "open"]
    assert np.array_equal(e.objects_end["red_block"].A, d.objects_end["red_block"].A)


@pytest.mark.parametrize("content,needle", [
    (b"", "is empty"),
    (bytes(np.random.default_rng(3).integers(0, 256, 500, dtype=np.uint8)), "not a readable .npz"),
])
def test_empty_or_random_bytes(tmp_path: Path, content: bytes, needle: str) -> None:
    p = tmp_path / "x.npz"
    p.write_bytes(content)
    with pytest.raises(DemoError, match=needle):
        Demonstration.load(p)


def test_truncated_zip(tmp_path: Path) -> None:
    good = _demo().save(tmp_path / "good.npz")
    p = tmp_path / "cut.npz"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DemoError, match="not a readable .npz|corrupt"):
        Demonstration.load(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="does not exist; record one"):
        Demonstration.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("changes,needle", [
    ({"q": None}, "lacks the array"),
    ({"q": np.full((40, 7), np.nan)}, "not finite"),
    ({"t": np.arange(40)[::-1] * 0.01}, "times must increase"),
    ({"q": np.zeros((40, 6))}, r"shape \(40, 6\), expected \(40, 7\)"),
    ({"t": np.arange(5) * 0.01}, "5 samples; at least 10"),
    ({"meta": np.array("{not json")}, "not JSON"),
])
def test_broken_arrays(tmp_path: Path, changes: dict[str, object], needle: str) -> None:
    with pytest.raises(DemoError, match=needle):
        Demonstration.load(_rewrite(tmp_path, **changes))


def test_another_cell_or_arm_is_refused() -> None:
    d = _demo()
    d.check_cell(load_cell_spec(TABLETOP))  # its own cell: fine
    with pytest.raises(DemoError, match="recorded on cell 'tabletop', not on 'kuka"):
        d.check_cell(load_cell_spec(KUKA))
    with pytest.raises(DemoError, match="does not have"):
        d.check_cell(load_cell_spec(TABLETOP), arm="ur5e")


def test_save_needs_npz(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="use the .npz extension"):
        _demo().save(tmp_path / "demo.json")
