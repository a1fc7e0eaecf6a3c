"""``robocell eval`` from the command line: JSON, JUnit, HTML report, replay, CI exit codes, mistakes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from robocell.cli.main import main

from tests.conftest import ROOT, TABLETOP

PICK = ["pick_and_place", "object=red_block", "target=bin"]
# perception noise large enough that some of the 4 trials from seed 0 fail
NOISE = ["--randomize", "sensor_noise.object_position=0.015", "--randomize", "sensor_noise.object_yaw=0.3"]
CHAOS = str(Path(__file__).parent / "chaos_skills")


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("eval")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["eval", *PICK, "--cell", str(TABLETOP), "--trials", "4", "--workers", "2", "--seed", "0",
                     *NOISE, "--json", "--junit", str(out / "junit.xml"), "--report", str(out / "report"),
                     "--animate", "1"])
    return code, json.loads(buf.getvalue()), out


def test_json_counts_every_trial(noisy_run) -> None:
    code, data, _ = noisy_run
    assert code == 0
    assert data["trials"] == 4 and data["workers"] == 2 and data["engine"] == "local"
    assert data["successes"] + data["failed"] + data["errors"] == 4
    assert 0 < data["successes"] < 4  # the noise makes some trials fail, not all
    assert data["success_rate"] == data["successes"] / 4
    for f in data["failures"]:
        assert f["status"] == "failed" and f["step"].startswith("1 pick_and_place")
        assert f["replay"].endswith(f"--trial {f['trial']} --randomize sensor_noise.object_position=0.015 "
                                    "--randomize sensor_noise.object_yaw=0.3")


def test_junit_is_valid_with_one_testcase_per_trial(noisy_run) -> None:
    _, data, out = noisy_run
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "4"
    assert int(suite.get("failures")) == data["failed"] and int(suite.get("errors")) == data["errors"]
    cases = suite.findall("testcase")
    assert len(cases) == 4
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == data["failed"]
    for case in failed:
        text = case.find("failure").text
        assert "seed: " in text and "failing step: 1 pick_and_place" in text and "replay: robocell eval" in text


def test_html_report_shows_each_failure_with_picture_and_replay(noisy_run) -> None:
    _, data, out = noisy_run
    page = (out / "report" / "index.html").read_text()
    assert f"{data['success_rate']:.1%}" in page
    assert "<svg" in page  # time per trial
    for f in data["failures"]:
        assert str(f["seed"]) in page and f["replay"].replace("'", "&#x27;") in page
        assert (out / "report" / f"trial-{f['trial']:05d}.png").is_file()
    # the first failure is replayed as an animation, embedded in the page
    assert page.count("data:image/gif;base64,") == 1
    assert page.count("data:image/png;base64,") == data["failed"] - 1
    import imageio.v3 as iio

    first = data["failures"][0]["trial"]
    frames = iio.imread(out / "report" / f"trial-{first:05d}.gif", index=None)
    assert frames.shape[0] > 10 and frames.std() > 5


def test_replay_of_a_failed_trial_fails_the_same_way(noisy_run, capsys: pytest.CaptureFixture[str]) -> None:
    _, data, _ = noisy_run
    f = data["failures"][0]
    code, out, _ = run_cli(capsys, "eval", *PICK, "--cell", TABLETOP, "--seed", 0, "--trial", f["trial"], *NOISE)
    assert code == 1
    assert f"trial {f['trial']} seed {f['seed']}" in out and f["error"] in " ".join(out.split())


def test_program_file_summary_table_and_min_success(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "eval", ROOT / "examples/programs/pick_place_red.yaml", "--cell", TABLETOP,
                             "--trials", 2, "--seed", 5, "--min-success", 0.99)
    assert code == 0, out + err
    assert "success 2/2 = 100.0%" in out and "trials/min" in out
    assert "2/2" in err  # the progress bar, on stderr


def test_a_bug_in_a_skill_is_an_error_and_min_success_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "eval", "buggy", "--cell", TABLETOP, "--trials", 1, "--skills", CHAOS,
                           "--min-success", 0.5)
    assert code == 1
    assert "KeyError: 'no such thing' (chaos.py:" in out and "below --min-success" in out


@pytest.mark.parametrize("args, needle", [
    (["pick_and_place", "object=unicorn", "target=bin"], "unknown object 'unicorn'"),
    (["pick_and_place", "red_block"], "write name=value"),
    (["teleport", "object=red_block"], "unknown skill 'teleport'"),
    (["missing/prog.yaml"], "does not exist"),
    ([*PICK, "--randomize", "friction=2:1"], "friction: [2.0, 1.0] is not allowed: must be [lo, hi] with lo <= hi"),
    ([*PICK, "--randomize", "sensor_noise.object_position=1"], "must be >= 0 and <= 0.05 m"),
    ([*PICK, "--randomize", "gravity=1"], "unknown field; allowed fields are: friction"),
    ([*PICK, "--randomize", "oops"], "write KEY=VALUE"),
    ([*PICK, "--engine", "warp"], "--engine 'warp': must be one of local, ray"),
    ([*PICK, "--address", "auto"], "add --engine ray"),
    ([*PICK, "--gui"], "add --trial K"),
    ([*PICK, "--min-success", "1.5"], "must be a fraction between 0 and 1"),
    ([*PICK, "--timeout", "0"], "--timeout 0"),
    ([*PICK, "--trial", "-1"], "must be >= 0"),
    ([*PICK, "--backend", "tcp://arm:5555", "--workers", "2"], "run one at a time"),
    ([*PICK, "--shard", "2/2"], "--shard 2/2: must be I/N with 0 <= I < N"),
    ([*PICK, "--shard", "first"], "write I/N"),
    ([*PICK, "--backend", "carrier-pigeon"], "--backend carrier-pigeon: unknown backend; available: "),
])
def test_mistakes_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code, out, err = run_cli(capsys, "eval", *args, "--cell", TABLETOP, "--trials", 1)
    assert code == 2, out + err
    assert needle in " ".join((out + err).split()) and "Traceback" not in out + err


def test_shards_split_the_trials_between_drivers(capsys: pytest.CaptureFixture[str]) -> None:
    from robocell.eval.evaluate import trial_seeds

    seen = []
    for shard in ("0/2", "1/2"):
        code, out, _ = run_cli(capsys, "eval", "home", "--cell", TABLETOP, "--trials", 5, "--seed", 3,
                               "--shard", shard, "--json")
        data = json.loads(out)
        assert code == 0 and data["shard"] == shard and data["successes"] == data["trials"]
        seen.append(data["trials"])
    assert seen == [3, 2]  # trials 0, 2, 4 and 1, 3: together the 5 trials of one unsharded run
    from robocell.eval.run import EvalPlan, prepare
    from robocell.eval.trial import EvalTarget

    jobs = [j for shard in ((0, 2), (1, 2))
            for j in prepare(EvalPlan(EvalTarget.parse(["home"]), str(TABLETOP), 5, 3, shard=shard))]
    assert sorted((j.trial, j.seed) for j in jobs) == list(enumerate(trial_seeds(3, 5)))
