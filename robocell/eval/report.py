"""What an evaluation run leaves behind: JSON, a summary table, JUnit XML and an HTML page.

Every failed trial is reported with its seed, the step that failed, the
error, a picture (PNG, or GIF for replayed failures) and the one-line command
that replays it alone.
"""

from __future__ import annotations

import base64
import html
import shlex
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robocell.eval.evaluate import TrialResult

if TYPE_CHECKING:
    from rich.table import Table

    from robocell.eval.trial import EvalTarget


@dataclass
class ScaleReport:
    """The results of one ``robocell eval`` run and how to replay each trial."""

    target: EvalTarget
    cell: str
    seed: int
    trials: list[TrialResult] = field(default_factory=list)
    engine: str = "local"
    workers: int = 1
    wall_time: float = 0.0  # s for the whole run
    replay_flags: tuple[str, ...] = ()  # --skills/--randomize/--backend as given, for replay commands
    run_replays: bool = True  # False when randomisation beyond poses applies: `robocell run` would not draw it
    shard: tuple[int, int] = (0, 1)  # (i, n): this run holds the trials k with k % n == i

    # ---- figures ----------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "failed": 0, "error": 0}
        for t in self.trials:
            out[t.status] += 1
        return out

    @property
    def success_rate(self) -> float:
        return self.counts["ok"] / len(self.trials) if self.trials else 0.0

    @property
    def failures(self) -> list[TrialResult]:
        return [t for t in self.trials if not t.success]

    @property
    def trials_per_minute(self) -> float:
        return 60.0 * len(self.trials) / self.wall_time if self.wall_time > 0 else 0.0

    def replay_command(self, t: TrialResult) -> str:
        """The one line that reruns trial ``t`` alone (add --gui or --record to watch it)."""
        words = ["robocell", "eval", *self.target.words(), "--cell", shlex.quote(self.cell),
                 "--seed", str(self.seed), "--trial", str(t.trial), *self.replay_flags]
        return " ".join(words)

    def run_command(self, t: TrialResult) -> str | None:
        """``robocell run … --seed S`` when that reproduces the trial (a file, no extra randomisation)."""
        if self.target.kind == "skill" or not self.run_replays:
            return None
        flags = [f for f in self.replay_flags if f.startswith("--skills")]
        return " ".join(["robocell", "run", shlex.quote(str(self.target.path)), "--cell", shlex.quote(self.cell),
                         "--seed", str(t.seed), *flags])

    def to_json(self) -> dict[str, Any]:
        walls = [t.wall_time for t in self.trials]
        c = self.counts
        return {
            "program": self.target.text(),
            "cell": self.cell,
            "seed": self.seed,
            "engine": self.engine,
            "workers": self.workers,
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "trials": len(self.trials),
            "successes": c["ok"],
            "failed": c["failed"],
            "errors": c["error"],
            "success_rate": self.success_rate,
            "wall_time_s": self.wall_time,
            "trials_per_minute": self.trials_per_minute,
            "mean_wall_time_s": float(np.mean(walls)) if walls else 0.0,
            "mean_sim_time_s": float(np.mean([t.sim_time for t in self.trials])) if walls else 0.0,
            "failures": [asdict(t) | {"status": t.status, "replay": self.replay_command(t)} for t in self.failures],
        }

    # ---- console ------------------------------------------------------------------------
    def table(self) -> Table:
        from rich.table import Table

        c = self.counts
        table = Table(title=f"{self.target.text()} on {self.cell}", title_justify="left")
        # short headings: the table must fit an 80-column CI log
        for col in ("trials", "ok", "failed", "errors", "success", "per min", "wall", "simulated"):
            table.add_column(col, justify="right")
        walls = [t.wall_time for t in self.trials] or [0.0]
        sims = [t.sim_time for t in self.trials] or [0.0]
        table.add_row(str(len(self.trials)), str(c["ok"]), str(c["failed"]), str(c["error"]),
                      f"{self.success_rate:.1%}", f"{self.trials_per_minute:.0f}",
                      f"{np.mean(walls):.2f} s", f"{np.mean(sims):.1f} s")
        return table

    # ---- JUnit --------------------------------------------------------------------------
    def junit_xml(self) -> str:
        """JUnit XML: one testcase per trial; failures carry seed, step, error and replay command."""
        c = self.counts
        suite = ET.Element("testsuite", name=f"robocell eval {self.target.text()}", tests=str(len(self.trials)),
                           failures=str(c["failed"]), errors=str(c["error"]), skipped="0",
                           time=f"{self.wall_time:.3f}",
                           timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        props = ET.SubElement(suite, "properties")
        for k, v in (("cell", self.cell), ("seed", self.seed), ("engine", self.engine), ("workers", self.workers),
                     ("shard", f"{self.shard[0]}/{self.shard[1]}")):
            ET.SubElement(props, "property", name=k, value=str(v))
        classname = f"robocell.eval.{Path(self.cell).stem}"
        for t in self.trials:
            case = ET.SubElement(suite, "testcase", classname=classname,
                                 name=f"trial {t.trial:05d} seed {t.seed}", time=f"{t.wall_time:.3f}")
            if t.success:
                continue
            tag = "error" if t.is_error else "failure"
            node = ET.SubElement(case, tag, message=t.error or "", type=t.error_type or tag)
            node.text = "\n".join(line for line in (
                f"seed: {t.seed}", f"failing step: {t.step or '-'}", f"error: {t.error}",
                f"replay: {self.replay_command(t)}",
                f"picture: {t.picture}" if t.picture else "") if line)
        ET.indent(suite)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"

    def write_junit(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.junit_xml())
        return p

    # ---- HTML ---------------------------------------------------------------------------
    def write_html(self, folder: str | Path) -> Path:
        """``folder/index.html``, self-contained (pictures embedded), next to the pictures themselves."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "index.html"
        path.write_text(_html(self))
        return path


# ---- the HTML page ----------------------------------------------------------------------------
_COLOURS = {"ok": "#2e9e44", "failed": "#d62728", "error": "#8c2bd6"}

# The failed-trials table has a fixed layout: its columns get the widths of its <colgroup>, the
# table never grows past the page (the replay column stays on screen at 1280 px), and long
# words (paths, replay commands) wrap at any character only when they must, not letter by letter.
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} .big{font-size:2.4em;font-weight:bold}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
table.failures{width:100%;table-layout:fixed} table.failures td{overflow-wrap:anywhere}
code{background:#f4f4f4;padding:.1em .3em;overflow-wrap:anywhere}
code.replay{display:block;white-space:pre-wrap;margin:.1em 0} .ok{color:#2e9e44}.failed{color:#d62728}.error{color:#8c2bd6}
img{max-width:100%;border:1px solid #ccc} .muted{color:#777}
"""
# (heading, width) of the failed-trials table's columns; the replay column takes what is left
_FAILURE_COLUMNS = (("trial", "4.5em"), ("seed", "8.5em"), ("status", "5.5em"), ("failing step", "14%"),
                    ("error", "20%"), ("picture", "180px"), ("replay", "auto"))


def _html(r: ScaleReport) -> str:
    e = html.escape
    c = r.counts
    walls = [t.wall_time for t in r.trials] or [0.0]
    head = (f"<h1>robocell eval: <code>{e(r.target.text())}</code> on <code>{e(r.cell)}</code></h1>"
            f"<p class='muted'>seed {r.seed}, {len(r.trials)} trials, engine {e(r.engine)} with {r.workers} "
            f"worker(s), {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>"
            f"<p><span class='big'>{r.success_rate:.1%}</span> success &nbsp; "
            f"<span class='ok'>{c['ok']} ok</span>, <span class='failed'>{c['failed']} failed</span>, "
            f"<span class='error'>{c['error']} errors (crash, hang or bug)</span></p>"
            f"<table><tr><th>wall time of the run</th><td>{r.wall_time:.1f} s</td></tr>"
            f"<tr><th>throughput</th><td>{r.trials_per_minute:.0f} trials/min</td></tr>"
            f"<tr><th>wall time per trial</th><td>mean {np.mean(walls):.2f} s, median {np.median(walls):.2f} s, "
            f"max {np.max(walls):.2f} s</td></tr>"
            f"<tr><th>simulated time per trial</th><td>mean {np.mean([t.sim_time for t in r.trials] or [0]):.2f} s"
            f"</td></tr></table>")
    chart = "<h2>Time per trial</h2>" + _svg_bars(r.trials)
    rows = []
    for t in r.failures:
        run = r.run_command(t)
        replay = f"<code class='replay'>{e(r.replay_command(t))}</code>" + (
            f"or <code class='replay'>{e(run)}</code>" if run else "")
        rows.append(f"<tr><td>{t.trial}</td><td>{t.seed}</td><td class='{t.status}'>{t.status}</td>"
                    f"<td>{e(t.step or '-')}</td><td>{e(t.error or '')}<br><span class='muted'>"
                    f"{e(t.error_type or '')}</span></td><td>{_picture(t.picture)}</td><td>{replay}</td></tr>")
    cols = "".join(f"<col style='width:{w}'>" for _, w in _FAILURE_COLUMNS)
    heads = "".join(f"<th>{h}</th>" for h, _ in _FAILURE_COLUMNS)
    failures = (f"<h2>Failed trials</h2><table class='failures'><colgroup>{cols}</colgroup><tr>{heads}</tr>"
                + "".join(rows) + "</table>" if rows else "<h2>Failed trials</h2><p>None.</p>")
    every = "".join(f"<tr><td>{t.trial}</td><td>{t.seed}</td><td class='{t.status}'>{t.status}</td>"
                    f"<td>{t.wall_time:.2f}</td><td>{t.sim_time:.2f}</td></tr>" for t in r.trials)
    all_trials = (f"<details><summary>All {len(r.trials)} trials</summary><table><tr><th>trial</th><th>seed</th>"
                  f"<th>status</th><th>wall s</th><th>sim s</th></tr>{every}</table></details>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>robocell eval {e(r.target.text())}</title>"
            f"<style>{_CSS}</style></head><body>{head}{chart}{failures}{all_trials}</body></html>\n")


def _picture(path: str | None) -> str:
    if not path:
        return "<span class='muted'>-</span>"
    p = Path(path)
    if not p.is_file():
        return f"<span class='muted'>{html.escape(path)}</span>"
    mime = "image/gif" if p.suffix.lower() == ".gif" else "image/png"
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f"<a href='{html.escape(p.name)}'><img alt='{html.escape(p.name)}' src='data:{mime};base64,{data}'></a>"


def _svg_bars(trials: list[TrialResult], width: int = 1000, height: int = 160) -> str:
    """Wall time of every trial as a bar, coloured by outcome (inline SVG: no script, no library)."""
    if not trials:
        return "<p>No trials.</p>"
    top = max(t.wall_time for t in trials) or 1.0
    bw = width / len(trials)
    bars = []
    for i, t in enumerate(trials):
        h = max(1.0, (height - 20) * t.wall_time / top)
        bars.append(f"<rect x='{i * bw:.2f}' y='{height - h:.2f}' width='{max(bw - 0.5, 0.5):.2f}' height='{h:.2f}' "
                    f"fill='{_COLOURS[t.status]}'><title>trial {t.trial} seed {t.seed}: {t.status}, "
                    f"{t.wall_time:.2f} s</title></rect>")
    axis = f"<text x='2' y='12' font-size='11'>{top:.2f} s</text>"
    return f"<svg width='{width}' height='{height}' role='img' aria-label='time per trial'>{axis}{''.join(bars)}</svg>"
