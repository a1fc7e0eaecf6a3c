"""Fixtures for the hardware layer: real servers in other processes, loopback only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import TABLETOP
from tests.hardware.rawclient import RawClient
from robocell.hardware.spawn import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One sim-driver server for a test module (0.5 s watchdog and liveness deadlines, audit log on).

    The raw protocol clients of these tests send no heartbeats: a reply slower than the
    watchdog (a loaded host) would stop a motion they are checking something else about.
    Tests of the watchdog itself (test_failures.py) use a server with the 50 ms default.
    The request rate limit is raised out of the way: the fuzz test sends as fast as it can,
    and each of its messages must reach the checks (test_chaos.py tests the limit).
    """
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with ServerProcess(TABLETOP, "--audit", str(audit), "--lease-timeout", "0.3", "--watchdog", "0.5",
                       "--rate", "1e6", "--liveness", "0.5") as srv:
        srv.audit = audit  # type: ignore[attr-defined]
        yield srv


@pytest.fixture
def raw(server: ServerProcess) -> Iterator[RawClient]:
    c = RawClient(server.endpoint)
    yield c
    if c.lease:
        c.call("lease_release")
    c.close()
