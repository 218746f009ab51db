"""The history as a regression tracker: per-series lines, change points, and the trend plot.

A series is the runs of one entry with the same full comparable config and dataset fingerprint
(``qa.gating.comparability.series_key``): an ad-hoc ``--set`` run, another profile or other data is
a
series of its own, so it never bends the nightly's line nor makes or hides its change points.
Each series is a row of the plot of its own (labelled with its config hash and data where the
entry has several); a run's report draws only the series of its own results and says how many
runs of other series it left out.

The plot has one row per entry (F1 | train samples/s), runs in order on the x-axis labelled with
their commit and date (so one run is one labelled tick, not a fractional axis), the current
baseline as a line with its tolerance band shaded, points that fail that gate marked ✗ in red, runs
that did not finish marked on the axis, and detected steps drawn as dotted lines.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.gating.comparability import SeriesKey, series_key
from qa.gating.verdicts import judge
from qa.measure.hardware import same_hardware
from qa.reporting.changepoint import find_steps
from qa.results.metricspec import METRICS, specs
from qa.results.store import RunResult, short_commit

MAX_PLOTTED_ENTRIES = 8


@dataclass(frozen=True)
class Change:
    """A persistent step in one metric of one entry's history."""

    entry: str
    metric: str
    before: float
    after: float
    commit: str | None
    date: str
    runs_ago: int  # runs after the first run of the new level (0: the newest run)

    @property
    def worse(self) -> bool:
        """The step goes the metric's bad direction."""
        return (self.after < self.before) == METRICS[self.metric].higher_is_better

    def describe(self) -> str:
        """``F1 dropped −1.4 from commit abc1234 on 2026-11-02, 4 runs ago``."""
        delta = self.after - self.before
        amount = (f"{delta:+.1f}" if METRICS[self.metric].unit == "points"
                  else f"{(self.after / self.before - 1) * 100:+.0f}%").replace("-", "−")
        where = f"commit {short_commit(self.commit)}" if self.commit else "an unknown commit"
        ago = "the latest run" if self.runs_ago == 0 else (
            f"{self.runs_ago} run{'s' * (self.runs_ago != 1)} ago")
        verb = "dropped" if (delta < 0) else "rose"
        return f"{METRICS[self.metric].header} {verb} {amount} from {where} on " \
               f"{self.date or 'an unknown date'}, {ago}"


def by_series(history: Sequence[RunResult]) -> dict[SeriesKey, list[RunResult]]:
    """History results grouped by series (entry, config hash, data), oldest first."""
    groups: dict[SeriesKey, list[RunResult]] = {}
    for result in history:
        groups.setdefault(series_key(result), []).append(result)
    return groups


def select(history: Sequence[RunResult], entries: Sequence[str] | None = None,
           keys: Sequence[SeriesKey] | None = None) -> dict[str, tuple[SeriesKey,
                                                                       list[RunResult]]]:
    """The series to show, by label: the entry id, or ``SeriesKey.label`` where that entry has
    several series among those shown. ``entries``/``keys`` restrict them (None: all)."""
    groups = {k: runs for k, runs in by_series(history).items()
              if (entries is None or k.entry in entries) and (keys is None or k in keys)}
    per_entry: dict[str, int] = {}
    for key in groups:
        per_entry[key.entry] = per_entry.get(key.entry, 0) + 1
    return {(key.entry if per_entry[key.entry] == 1 else key.label()): (key, runs)
            for key, runs in groups.items()}


def left_out(history: Sequence[RunResult], keys: Sequence[SeriesKey]) -> int:
    """Runs of the entries of ``keys`` that belong to none of them (other config or data)."""
    entries = {k.entry for k in keys}
    return sum(1 for r in history if r.entry_id in entries and series_key(r) not in keys)


def metric_value(result: RunResult, metric: str) -> float | None:
    """The metric of an ok run, or None."""
    return METRICS[metric].extract(result) if result.status == "ok" else None


def series(runs: Sequence[RunResult], metric: str) -> list[tuple[RunResult, float]]:
    """(run, value) for the runs that measured ``metric``; timings only on the newest hardware."""
    points = [(r, v) for r in runs if (v := metric_value(r, metric)) is not None]
    if METRICS[metric].hardware_bound and points:
        newest = points[-1][0].hardware
        points = [(r, v) for r, v in points
                  if r.hardware == newest or same_hardware(r.hardware, newest)]
    return points


def changes_of(label: str, runs: Sequence[RunResult], metric: str) -> list[Change]:
    """Every persistent step of ``metric`` over one series' runs, oldest first.

    The one place that turns ``qa.reporting.changepoint`` steps into dated, attributed changes:
    the report's trend section, the trend plot and the dashboard (``qa.reporting.publish``) all
    read it.
    """
    points = series(runs, metric)
    found = []
    for step in find_steps([v for _, v in points]):
        run = points[step.index][0]
        found.append(Change(label, metric, step.before, step.after,
                            (run.environment or {}).get("git_commit"),
                            (run.finished_at or run.started_at)[:10],
                            len(points) - 1 - step.index))
    return found


def detect_changes(history: Sequence[RunResult],
                   metrics: Sequence[str] | None = None,
                   entries: Sequence[str] | None = None,
                   keys: Sequence[SeriesKey] | None = None) -> list[Change]:
    """The latest persistent step of each series' metric (``qa.reporting.changepoint``), newest
    first.

    ``metrics``: names from ``qa.results.metricspec`` (default: those with the ``changepoint``
    role);
    ``entries``/``keys``: the series looked at (``select``). ``Change.entry`` is the label.
    """
    metrics = metrics or [spec.name for spec in specs(role="changepoint")]
    changes = []
    for entry, (_, runs) in sorted(select(history, entries, keys).items()):
        for metric in metrics:
            found = changes_of(entry, runs, metric)
            if found:
                changes.append(found[-1])
    return sorted(changes, key=lambda c: (c.runs_ago, c.entry, c.metric))


def band(baseline: Any, metric: str, hardware: dict[str, Any]) -> tuple[float, float, float,
                                                                         Any] | None:
    """(value, low, high, spec) of the baseline's gate for ``metric`` on ``hardware``, or
    None (no baseline, or it does not gate the metric there)."""
    if baseline is None:
        return None
    spec = baseline.metrics.get(metric)
    if spec is None:
        section = baseline.timing_for(hardware)
        spec = section.metrics.get(metric) if section is not None else None
    if spec is None:
        return None
    tol = spec.effective_tolerance()
    width = tol if spec.unit == "points" else tol * abs(spec.value)
    return spec.value, spec.value - width, spec.value + width, spec


def _tick(run: RunResult) -> str:
    commit = short_commit((run.environment or {}).get("git_commit"))
    return f"{commit}\n{(run.finished_at or run.started_at)[5:10] or '?'}"


def draw_metric(ax: Any, runs: Sequence[RunResult], metric: str,
                baseline: Any = None) -> list[tuple[int, RunResult, float]]:
    """One metric of one series on a matplotlib axis (see the module docstring for what is
    drawn); the trend PNG's panels and the dashboard's plots (``qa.reporting.publish``) both
    come from here, so a plot means the same wherever it is shown.

    Args:
        runs: the series' runs, oldest first; one x position each.
        baseline: the entry's ``Baseline`` (or None): its band on the newest run's hardware.

    Returns:
        (x, run, value) of every point drawn, for callers that annotate them.
    """
    points = series(runs, metric)
    index = {id(r): i for i, r in enumerate(runs)}
    gate_band = band(baseline, metric, runs[-1].hardware) if runs else None
    if gate_band:
        value, low, high, spec = gate_band
        ax.axhspan(low, high, color="tab:green", alpha=0.15, lw=0, label="baseline ± tolerance")
        ax.axhline(value, color="tab:green", lw=1, label="baseline")
    xs = [index[id(r)] for r, _ in points]
    ys = [v for _, v in points]
    ax.plot(xs, ys, color="tab:blue", marker="o", ms=5, lw=1.2, label=METRICS[metric].header)
    if gate_band:
        spec = gate_band[3]
        bad = [(x, y) for x, y in zip(xs, ys, strict=True)
               if judge(y, spec.value, spec.effective_tolerance(), spec.unit,
                        spec.higher_is_better)[1] == "fail"]
        if bad:
            ax.plot(*zip(*bad, strict=True), ls="", marker="X", ms=10, color="tab:red",
                    label="fails the gate")
    for i, r in enumerate(runs):
        if r.status != "ok":
            ax.axvline(i, color="tab:red", ls="--", lw=1)
            ax.annotate(r.status, (i, 0.97), xycoords=("data", "axes fraction"),
                        color="tab:red", fontsize=8, ha="center", va="top")
    for step in find_steps(ys):
        ax.axvline(xs[step.index] - 0.5, color="black", ls=":", lw=1.2)
        ax.annotate(f" step {step.delta:+.1f}", (xs[step.index] - 0.5, 0.03),
                    xycoords=("data", "axes fraction"), fontsize=8)
    if not points:
        ax.annotate("not measured", (0.5, 0.5), xycoords="axes fraction",
                    ha="center", color="grey")
        ax.set_yticks([])
    stride = max(1, math.ceil(len(runs) / 12))
    ticks = sorted(range(len(runs) - 1, -1, -stride))  # anchored on the newest run
    ax.set_xticks(ticks)
    ax.set_xticklabels([_tick(runs[t]) for t in ticks], fontsize=7)
    ax.set_xlim(-0.6, len(runs) - 0.4)
    ax.margins(y=0.25)
    ax.grid(alpha=0.3)
    return [(x, r, v) for x, (r, v) in zip(xs, points, strict=True)]


def legend(fig: Any) -> None:
    """The legend of ``draw_metric``'s marks, once per figure, below the panels."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color="tab:green", alpha=0.15, label="baseline ± tolerance"),
               Line2D([], [], color="tab:green", lw=1, label="baseline"),
               Line2D([], [], color="tab:blue", marker="o", label="measured"),
               Line2D([], [], ls="", marker="X", ms=9, color="tab:red", label="fails the gate"),
               Line2D([], [], color="tab:red", ls="--", label="run did not finish"),
               Line2D([], [], color="black", ls=":", label="step (change point)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=6, fontsize=8, frameon=False)


def plot_trend(history: Sequence[RunResult], path: str | os.PathLike,
               baselines: dict[str, Any] | None = None,
               entries: Sequence[str] | None = None,
               keys: Sequence[SeriesKey] | None = None) -> Path | None:
    """Draw the trend PNG (see the module docstring); None when there is nothing to plot.

    Args:
        history: results, oldest first.
        path: where the PNG goes (written atomically).
        baselines: entry id → ``Baseline`` (or None) for the band and the failed marks.
        entries: the entries to draw (default: all in the history); at most
            ``MAX_PLOTTED_ENTRIES`` series, those with a failed point or a step first.
        keys: only these series (e.g. those of a run's own results); the runs of their entries
            in other series are left out and counted in the title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    groups = select(history, entries, keys)
    if not groups:
        return None
    baselines = baselines or {}
    plotted = [spec.name for spec in specs(role="trend")]
    flagged = {c.entry for c in detect_changes(history, plotted, entries, keys)}
    order = sorted(groups, key=lambda e: (e not in flagged, e))[:MAX_PLOTTED_ENTRIES]
    fig = Figure(figsize=(11, 2.6 * len(order) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(order), len(plotted), squeeze=False)
    for row, entry in enumerate(order):
        key, runs = groups[entry]
        for col, metric in enumerate(plotted):
            ax = axes[row][col]
            draw_metric(ax, runs, metric, baselines.get(key.entry))
            ax.set_title(f"{entry} — {METRICS[metric].header}", fontsize=9, loc="left")
    legend(fig)
    titles = [f"{len(order)} of {len(groups)} series (failing or stepped first)"] \
        if len(order) < len(groups) else []
    other = left_out(history, [k for k, _ in groups.values()]) if keys is not None else 0
    if other:
        titles.append(f"{other} run(s) of these entries with another config or data "
                      "(e.g. ad-hoc --set runs) not drawn: another series")
    if titles:
        fig.suptitle("; ".join(titles), fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=90)
    os.replace(tmp, path)
    return path
