"""The history as a regression tracker: per-entry series, change points, and the trend plot.

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

from qa.changepoint import find_steps
from qa.hardware import same_hardware
from qa.metricspec import METRICS, specs
from qa.results import RunResult

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
        where = f"commit {self.commit[:7]}" if self.commit else "an unknown commit"
        ago = "the latest run" if self.runs_ago == 0 else (
            f"{self.runs_ago} run{'s' * (self.runs_ago != 1)} ago")
        verb = "dropped" if (delta < 0) else "rose"
        return f"{METRICS[self.metric].header} {verb} {amount} from {where} on " \
               f"{self.date or 'an unknown date'}, {ago}"


def by_entry(history: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """History results grouped by entry id, each list oldest first (history order)."""
    groups: dict[str, list[RunResult]] = {}
    for result in history:
        groups.setdefault(result.entry_id, []).append(result)
    return groups


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


def detect_changes(history: Sequence[RunResult],
                   metrics: Sequence[str] | None = None,
                   entries: Sequence[str] | None = None) -> list[Change]:
    """The latest persistent step of each entry's metric (``qa.changepoint``), newest first.

    ``metrics``: names from ``qa.metricspec`` (default: those with the ``changepoint`` role).
    """
    metrics = metrics or [spec.name for spec in specs(role="changepoint")]
    changes = []
    for entry, runs in sorted(by_entry(history).items()):
        if entries is not None and entry not in entries:
            continue
        for metric in metrics:
            points = series(runs, metric)
            steps = find_steps([v for _, v in points])
            if not steps:
                continue
            step = steps[-1]
            run = points[step.index][0]
            changes.append(Change(entry, metric, step.before, step.after,
                                  (run.environment or {}).get("git_commit"),
                                  (run.finished_at or run.started_at)[:10],
                                  len(points) - 1 - step.index))
    return sorted(changes, key=lambda c: (c.runs_ago, c.entry, c.metric))


def _band(baseline: Any, metric: str, hardware: dict[str, Any]) -> tuple[float, float, float,
                                                                          Any] | None:
    """(value, low, high, spec) of the baseline's gate for ``metric``, or None."""
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
    commit = ((run.environment or {}).get("git_commit") or "?")[:7]
    return f"{commit}\n{(run.finished_at or run.started_at)[5:10] or '?'}"


def _legend(fig: Any) -> None:
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
               entries: Sequence[str] | None = None) -> Path | None:
    """Draw the trend PNG (see the module docstring); None when there is nothing to plot.

    Args:
        history: results, oldest first.
        path: where the PNG goes (written atomically).
        baselines: entry id → ``Baseline`` (or None) for the band and the failed marks.
        entries: the entries to draw (default: all in the history); at most
            ``MAX_PLOTTED_ENTRIES``, those with a failed point or a step first.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from qa.verdicts import judge

    groups = {e: r for e, r in by_entry(history).items() if entries is None or e in entries}
    if not groups:
        return None
    baselines = baselines or {}
    plotted = [spec.name for spec in specs(role="trend")]
    flagged = {c.entry for c in detect_changes(history, plotted)}
    order = sorted(groups, key=lambda e: (e not in flagged, e))[:MAX_PLOTTED_ENTRIES]
    fig = Figure(figsize=(11, 2.6 * len(order) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(order), len(plotted), squeeze=False)
    for row, entry in enumerate(order):
        runs = groups[entry]
        for col, metric in enumerate(plotted):
            ax = axes[row][col]
            points = series(runs, metric)
            index = {id(r): i for i, r in enumerate(runs)}
            band = _band(baselines.get(entry), metric, runs[-1].hardware)
            if band:
                value, low, high, spec = band
                ax.axhspan(low, high, color="tab:green", alpha=0.15, lw=0,
                           label="baseline ± tolerance")
                ax.axhline(value, color="tab:green", lw=1, label="baseline")
            xs = [index[id(r)] for r, _ in points]
            ys = [v for _, v in points]
            ax.plot(xs, ys, color="tab:blue", marker="o", ms=5, lw=1.2,
                    label=METRICS[metric].header)
            if band:
                bad = [(x, y) for x, y in zip(xs, ys, strict=True)
                       if judge(y, band[3].value, band[3].effective_tolerance(), band[3].unit,
                                band[3].higher_is_better)[1] == "fail"]
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
            ax.set_title(f"{entry} — {METRICS[metric].header}", fontsize=9, loc="left")
    _legend(fig)
    if len(order) < len(groups):
        fig.suptitle(f"{len(order)} of {len(groups)} entries (failing or stepped first)",
                     fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=90)
    os.replace(tmp, path)
    return path
