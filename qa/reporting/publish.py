"""The history as a static website: ``qa-bench publish HISTORY... --out site/``.

What a nightly's users browse (as with asv, conbench or github-action-benchmark), from the
history files alone, with no server: ``index.html`` lists every series with the verdicts of its
latest run, failing series first; one page per series × gated metric shows the metric over the
runs (commit and date on the axis) with the baseline and its tolerance band, the runs that fail
it, the change points, and a table of every point drawn (commit, date, value, verdict, hardware
fingerprint; the same text is each point's hover tooltip).

Nothing here decides anything of its own: series and their points come from
``qa.reporting.trend`` (``select``, ``series``, ``changes_of``; emulated and real runs, other
configs and other data are separate series, ``qa.gating.comparability.series_key``), the plot is
``trend.draw_metric`` (the panel of the run report's trend PNG), the verdicts are
``qa.gating.verdicts.gate`` of the latest run against the current baseline, the band is
``trend.band``.

Why matplotlib SVG (inline, with SVG ``<title>`` tooltips) and not a JavaScript chart library
(plotly's offline HTML, Vega, Chart.js): matplotlib is already a dependency and already draws
the trend, so the dashboard's plot is the report's plot, drawn by the same function; the pages
need no JavaScript at all (nothing to vendor, no 3.5 MB plotly.js per site, no console to go
wrong, readable with JavaScript off and from ``file://``); a page is ~50 kB. What that gives up
is zoom and pan, which a history of tens to hundreds of nights does not need; the table under
each plot carries every number. The HTML is rendered by jinja2 (autoescaping: entry names,
failure causes and notes come from result files) from the templates in ``site/``.

Site layout: ``index.html``, ``style.css``, ``<series>/<metric>.html``, and ``.qa-bench-site``
(a marker: ``--out`` replaces a folder only if it holds one, so a mistyped ``--out .`` cannot
wipe a checkout) and ``.nojekyll`` (GitHub Pages serves the files as they are). The site is built
in a folder beside ``--out`` and swapped in whole: a reader never sees half a site.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from qa.errors import QABenchError
from qa.gating.baselines import Baseline, load_baseline
from qa.gating.comparability import SeriesKey
from qa.gating.verdicts import Verdict, gate, is_emulated, judge
from qa.measure.hardware import describe
from qa.reporting.report import format_delta, format_tolerance, format_value
from qa.reporting.trend import Change, band, changes_of, draw_metric, legend, select, series
from qa.results.metricspec import METRICS
from qa.results.store import RunResult, read_history, short_commit

MARKER = ".qa-bench-site"
TEMPLATES = Path(__file__).with_name("site")

#: A series' state on the overview, in the order it is listed (failing first).
STATES = ("fail", "not comparable", "not judged", "improved", "pass")
WORDS = {"pass": "pass", "fail": "FAIL", "improved": "improved", "missing": "no baseline",
         "other_hardware": "other hardware", "busy": "busy machine",
         "not_comparable": "not comparable"}


class NothingToPublish(QABenchError):
    """The history files hold no run: exit 5 (nothing judged), not 2."""


@dataclass(frozen=True)
class History:
    """The runs of the history files, oldest first, and the lines that could not be read."""

    runs: list[RunResult]
    unreadable: list[str]


@dataclass
class SeriesView:
    """One series as the site shows it."""

    key: SeriesKey
    label: str
    slug: str
    runs: list[RunResult]
    baseline: Baseline | None
    verdicts: list[Verdict]
    metrics: list[str]
    changes: list[Change] = field(default_factory=list)

    @property
    def latest(self) -> RunResult:
        return self.runs[-1]

    @property
    def state(self) -> str:
        """``fail`` when the latest run failed a gate or did not finish, then ``not
        comparable``, ``not judged`` (nothing gated: no baseline, other hardware, busy),
        ``improved`` and ``pass``."""
        statuses = {v.status for v in self.verdicts}
        if "fail" in statuses or self.latest.status != "ok":
            return "fail"
        if "not_comparable" in statuses:
            return "not comparable"
        if not statuses & {"pass", "improved"}:
            return "not judged"
        return "improved" if "improved" in statuses else "pass"


def read_histories(paths: Sequence[str | os.PathLike]) -> History:
    """Every run of the history files, oldest first, each run once.

    A run in two files (a shard's history and the merged one) is shown once. With several
    files, runs are ordered by their finish time (one file's order is already its time order).

    Raises:
        QABenchError: a file is missing, a folder, unreadable, or not a history (it has lines
            and none of them is a RunResult).
    """
    runs: list[RunResult] = []
    unreadable: list[str] = []
    seen: set[str] = set()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            raise QABenchError(f"{path}: a folder, not a history file (e.g. {path}/history.jsonl)")
        if not path.is_file():
            raise QABenchError(f"{path}: no such history file")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = read_history(path)
        lines = [str(w.message) for w in caught]
        if lines and not found:
            raise QABenchError(f"{path}: not a qa-bench history (JSON lines of RunResults): "
                               f"none of its {len(lines)} line(s) is one; first: {lines[0]}")
        unreadable += lines
        for run in found:
            digest = hashlib.sha256(json.dumps(run.to_dict(), sort_keys=True, default=str)
                                    .encode()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                runs.append(run)
    if len(paths) > 1:
        runs.sort(key=lambda r: r.finished_at or r.started_at)
    return History(runs, unreadable)


def build_views(history: Sequence[RunResult],
                baselines_root: str | os.PathLike | None) -> list[SeriesView]:
    """The series of the history, failing first, each with its latest run judged.

    Raises:
        QABenchError: a baseline file exists but is invalid.
    """
    views = []
    groups = select(history)
    slugs = _slugs(groups)
    for label, (key, runs) in groups.items():
        baseline = load_baseline(baselines_root, runs[-1].key) if baselines_root else None
        verdicts = gate(runs[-1], baseline)
        gated = set(baseline.metrics) | {m for t in baseline.timings for m in t.metrics} \
            if baseline else set()
        metrics = [name for name, spec in METRICS.items()
                   if name in gated or any(spec.extract(r) is not None for r in runs)]
        changes = [c for m in metrics for c in changes_of(label, runs, m)]
        views.append(SeriesView(key, label, slugs[label], runs, baseline, verdicts, metrics,
                                changes))
    newest_first = sorted(views, key=lambda v: v.latest.finished_at or v.latest.started_at,
                          reverse=True)
    return sorted(newest_first, key=lambda v: STATES.index(v.state))


def _slugs(groups: dict[str, tuple[SeriesKey, list[RunResult]]]) -> dict[str, str]:
    """A folder name per series: the entry id, plus config, data and emulation where the entry
    has several series (the label then says the same)."""
    out = {}
    for label, (key, _) in groups.items():
        slug = key.entry.replace("/", "--")
        if label != key.entry:
            slug += f"--{key.config[:7]}-{key.data[:7] or 'nodata'}" + \
                    ("-emulated" if key.emulated else "")
        out[label] = slug
    return out


def publish(history_paths: Sequence[str | os.PathLike], out: str | os.PathLike,
            baselines_root: str | os.PathLike | None = None) -> tuple[Path, list[SeriesView],
                                                                       History]:
    """Write the site (see the module docstring) and return its index, series and history.

    Everything is read and checked before anything is written.

    Raises:
        QABenchError: bad input (``read_histories``, ``build_views``), an empty history
            (``NothingToPublish``), or ``out`` exists and is neither empty nor a site.
    """
    out = Path(out)
    _check_out(out)
    history = read_histories(history_paths)
    if not history.runs:
        raise NothingToPublish("the history holds no run" + (
            f" ({len(history.unreadable)} unreadable line(s))" if history.unreadable else ""))
    views = build_views(history.runs, baselines_root)
    env = _environment()
    staging = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        shutil.copyfile(TEMPLATES / "style.css", staging / "style.css")
        (staging / MARKER).write_text("written by qa-bench publish; --out may replace this "
                                      "folder\n", encoding="utf-8")
        (staging / ".nojekyll").write_text("", encoding="utf-8")
        generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        common = {"generated": generated, "sources": [str(p) for p in history_paths],
                  "baselines": str(baselines_root) if baselines_root else None}
        for view in views:
            for metric in view.metrics:
                page = staging / view.slug / f"{metric}.html"
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text(env.get_template("metric.html").render(
                    **common, root="../", view=view, **_metric_page(view, metric)),
                    encoding="utf-8")
        (staging / "index.html").write_text(env.get_template("index.html").render(
            **common, root="", rows=[_overview_row(v) for v in views],
            runs=len(history.runs), unreadable=history.unreadable,
            counts={s: sum(v.state == s for v in views) for s in STATES},
            span=_span(history.runs)), encoding="utf-8")
        _swap(staging, out)
    except OSError as exc:
        raise QABenchError(f"cannot write the site to {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html", views, history



def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise QABenchError(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise QABenchError(f"--out {out}: the folder holds files that qa-bench publish did not "
                           f"write (no {MARKER}); give a new or empty folder")


def _swap(staging: Path, out: Path) -> None:
    """Put the built site at ``out``; the old one (a site or an empty folder) goes whole."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["number"] = format_value
    return env


def _span(runs: Sequence[RunResult]) -> str:
    dates = sorted(d[:10] for d in (r.finished_at or r.started_at for r in runs) if d)
    return f"{dates[0]} … {dates[-1]}" if dates else "no dates"


def _date(run: RunResult) -> str:
    return (run.finished_at or run.started_at or "?")[:16].replace("T", " ")


def _commit(run: RunResult) -> str:
    return (run.environment or {}).get("git_commit") or ""


def _overview_row(view: SeriesView) -> dict[str, Any]:
    by_metric = {v.metric: v for v in view.verdicts}
    cells = []
    for metric in view.metrics:
        verdict = by_metric.get(metric)
        value = METRICS[metric].extract(view.latest) if view.latest.status == "ok" else None
        cells.append({"href": f"{view.slug}/{metric}.html", "header": METRICS[metric].header,
                      "value": value, "status": verdict.status if verdict else "",
                      "word": WORDS.get(verdict.status, verdict.status) if verdict else
                      "not gated", "why": verdict.message if verdict else ""})
    latest = {c.metric: c for c in view.changes}  # the newest step of each metric
    return {"view": view, "state": view.state, "cells": cells,
            "date": _date(view.latest), "commit": short_commit(_commit(view.latest)),
            "hardware": describe(view.latest.hardware),
            "emulated": is_emulated(view.latest.hardware),
            "failure": (view.latest.failure or {}) if view.latest.status != "ok" else {},
            "changes": [{"text": c.describe(), "worse": c.worse}
                        for c in sorted(latest.values(), key=lambda c: c.runs_ago)]}


def _metric_page(view: SeriesView, metric: str) -> dict[str, Any]:
    spec = METRICS[metric]
    points = series(view.runs, metric)
    gate_band = band(view.baseline, metric, view.latest.hardware)
    rows = []
    for run, value in reversed(points):
        status = ""
        if gate_band:
            b = gate_band[3]
            status = judge(value, b.value, b.effective_tolerance(), b.unit,
                           b.higher_is_better)[1]
        rows.append({"date": _date(run), "commit": short_commit(_commit(run)),
                     "full_commit": _commit(run), "value": value, "status": status,
                     "word": WORDS.get(status, ""), "hardware": describe(run.hardware),
                     "emulated": is_emulated(run.hardware)})
    measured = sum(1 for r in view.runs if r.status == "ok" and spec.extract(r) is not None)
    verdict = next((v for v in view.verdicts if v.metric == metric), None)
    baseline = None
    if gate_band:
        value, low, high, b = gate_band
        baseline = {"value": value, "low": low, "high": high,
                    "tolerance": format_tolerance(b.effective_tolerance(), b.unit),
                    "measured_by": view.baseline.provenance.get("measured_by"),
                    "date": str(view.baseline.provenance.get("date") or "?")[:10],
                    "runs": view.baseline.provenance.get("runs")}
    return {"metric": metric, "header": spec.header,
            "direction": "higher is better" if spec.higher_is_better else "lower is better",
            "svg": _svg(view, metric), "rows": rows, "baseline": baseline,
            "verdict": verdict and {"status": verdict.status,
                                    "word": WORDS.get(verdict.status, verdict.status),
                                    "value": verdict.value,
                                    "delta": format_delta(verdict.delta, verdict.unit),
                                    "message": verdict.message, "note": verdict.note},
            "other_hardware": measured - len(points) if spec.hardware_bound else 0,
            "unfinished": sum(1 for r in view.runs if r.status != "ok"),
            "changes": [{"text": c.describe(), "worse": c.worse}
                        for c in view.changes if c.metric == metric],
            "siblings": [(m, METRICS[m].header) for m in view.metrics]}


def _svg(view: SeriesView, metric: str) -> Markup:
    """The metric's plot as inline SVG, each point with a ``<title>`` tooltip."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "qa-bench"}):
        fig = Figure(figsize=(10, 3.6), layout="constrained")
        FigureCanvasSVG(fig)
        ax = fig.subplots()
        drawn = draw_metric(ax, view.runs, metric, view.baseline)
        for number, (x, _, value) in enumerate(drawn):
            # a wide transparent target over each point: hovering it shows the tooltip
            ax.plot([x], [value], ls="", marker="o", ms=14, alpha=0.0, gid=f"qa-point-{number}")
        ax.set_title(f"{view.label} — {METRICS[metric].header}", fontsize=10, loc="left")
        legend(fig)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    for number, (_, run, value) in enumerate(drawn):
        tip = (f"{_date(run)} · commit {short_commit(_commit(run))} · "
               f"{METRICS[metric].header} {format_value(value)} · {describe(run.hardware)}")
        anchor = f'<g id="qa-point-{number}">'
        if svg.count(anchor) != 1:
            raise RuntimeError(f"matplotlib's SVG has {svg.count(anchor)} groups {anchor}")
        svg = svg.replace(anchor, f"{anchor}<title>{html.escape(tip)}</title>")
    return Markup(svg)
