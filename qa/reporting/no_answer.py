"""The pictures of ``evaluate-v2.0.py --out-image-dir``: precision-recall curves and histograms.

``qa.task.metrics.evaluate_v2(..., precision_recall=True)`` computes the curves and the
no-answer probabilities (the front end hands them over as plain numbers: reporting imports no
task module); this module only draws them, under the official script's file names
and with its plot settings (a step curve over recall with the area under it shaded, axes to
1.05; histograms of 20 bins over [0, 1] weighted to proportions), so a folder written here can
replace one the script wrote:

``pr_exact.png``, ``pr_f1.png``, ``pr_oracle.png`` (none when no question is answerable),
``na_prob_hist_hasAns.png``, ``na_prob_hist_noAns.png`` (each when such questions exist).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qa.errors import QABenchError

#: curve name -> (file name, title), as the official script names and titles them.
CURVES = {
    "exact": ("pr_exact.png", "Precision-Recall curve for Exact Match score"),
    "f1": ("pr_f1.png", "Precision-Recall curve for F1 score"),
    "oracle": ("pr_oracle.png",
               "Oracle Precision-Recall curve (binary task of HasAns vs. NoAns)"),
}
#: histogram name -> file name.
HISTOGRAMS = {name: f"na_prob_hist_{name}.png" for name in ("hasAns", "noAns")}


def check_image_dir(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an image folder that cannot be one (an existing file)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise QABenchError(f"--out-image-dir {str(folder)!r} is a file, not a folder")
    return folder


def write_no_answer_plots(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                          histograms: Mapping[str, Sequence[float]],
                          out_dir: str | os.PathLike) -> list[Path]:
    """Draw the curves and histograms into ``out_dir`` (created if needed).

    Args:
        curves: ``"exact"``, ``"f1"``, ``"oracle"`` -> (precisions, recalls), those present.
        histograms: ``"hasAns"``, ``"noAns"`` -> no-answer probabilities, those present.
        out_dir: the folder (``--out-image-dir``).

    Returns:
        The files written, curves first.

    Raises:
        QABenchError: the folder cannot be created or written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = check_image_dir(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QABenchError(f"cannot create --out-image-dir {str(folder)!r}: "
                           f"{exc.strerror or exc}") from None
    written = []
    for name, (precisions, recalls) in curves.items():
        file_name, title = CURVES[name]
        fig = Figure()
        FigureCanvasAgg(fig)
        _draw_curve(fig.add_subplot(), precisions, recalls, title)
        written.append(_save(fig, folder / file_name))
    for name, values in histograms.items():
        fig = Figure()
        FigureCanvasAgg(fig)
        _draw_histogram(fig.add_subplot(), values, name)
        written.append(_save(fig, folder / HISTOGRAMS[name]))
    return written


def _draw_curve(ax: Any, precisions: Sequence[float], recalls: Sequence[float],
                title: str) -> None:
    """Precision over recall as steps after each point, the area below shaded."""
    ax.step(recalls, precisions, color="b", alpha=0.2, where="post")
    ax.fill_between(recalls, precisions, step="post", alpha=0.2, color="b")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim([0.0, 1.05])
    ax.set_ylim([0.0, 1.05])
    ax.set_title(title)


def _draw_histogram(ax: Any, values: Sequence[float], name: str) -> None:
    """The share of the questions per no-answer probability bin (20 bins over [0, 1]; values
    outside are not counted, as in the official script)."""
    import numpy as np

    weights = np.ones_like(values, dtype=float) / float(len(values))
    ax.hist(values, weights=weights, bins=20, range=(0.0, 1.0))
    ax.set_xlabel("Model probability of no-answer")
    ax.set_ylabel("Proportion of dataset")
    ax.set_title(f"Histogram of no-answer probability: {name}")


def _save(fig: Any, path: Path) -> Path:
    """Write the PNG beside its place, then rename it there: never a half-written picture."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise QABenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
