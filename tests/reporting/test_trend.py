"""The history as a regression tracker: change points on synthetic histories, the trend plot."""

from __future__ import annotations

import random
from pathlib import Path

from qa.gating.comparability import series_key
from qa.reporting.changepoint import find_steps, noise_sigma
from qa.reporting.trend import _tick, detect_changes, plot_trend, select
from qa.results.store import RunResult

KEY = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}


def _noise(seed: int, n: int = 20, level: float = 90.0, sigma: float = 0.5) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0, sigma) for _ in range(n)]


def _history(values: list[float], status: dict[int, str] | None = None) -> list[RunResult]:
    runs = []
    for i, v in enumerate(values):
        bad = (status or {}).get(i)
        runs.append(RunResult(
            key=dict(KEY), config={}, status=bad or "ok",
            metrics={} if bad else {"f1": v, "exact_match": v - 1},
            timings={} if bad else {"train_samples_per_s": 100.0},
            environment={"git_commit": f"{i:02d}abcdef0123"},
            finished_at=f"2026-11-{i + 1:02d}T03:00:00"))
    return runs


def test_a_step_of_1_5_in_noise_0_5_is_found_at_its_run() -> None:
    values = [v - (1.5 if i >= 12 else 0) for i, v in enumerate(_noise(7))]
    steps = find_steps(values)
    assert [s.index for s in steps] == [12]
    assert -2.2 < steps[0].delta < -0.8
    # Over 50 histories (measured: 37 of 50 within one run of the step, 20 runs each).
    near = 0
    for seed in range(50):
        values = [v - (1.5 if i >= 12 else 0) for i, v in enumerate(_noise(seed))]
        near += any(abs(s.index - 12) <= 1 for s in find_steps(values))
    print(f"step of 1.5 in noise 0.5 found within one run in {near} of 50 histories")
    assert near >= 35, near


def test_noise_only_histories_give_almost_no_false_steps() -> None:
    false_steps = sum(len(find_steps(_noise(seed))) for seed in range(1000, 1050))
    print(f"false steps in 50 noise-only histories of 20 runs: {false_steps}")
    assert false_steps <= 3


def test_one_noisy_night_is_not_a_step() -> None:
    values = _noise(3)
    values[10] -= 4.0  # one bad night, back to normal the next
    assert find_steps(values) == []
    values = _noise(3)
    values[19] -= 3.0  # a drop in the newest run alone has not persisted yet
    assert find_steps(values) == []


def test_noise_estimate_ignores_the_step() -> None:
    values = [v - (5.0 if i >= 10 else 0) for i, v in enumerate(_noise(11, n=30))]
    assert 0.3 < noise_sigma(values) < 0.75


def test_change_is_named_with_commit_date_and_runs_ago() -> None:
    values = [v - (1.5 if i >= 16 else 0) for i, v in enumerate(_noise(7))]
    changes = [c for c in detect_changes(_history(values)) if c.metric == "f1"]
    assert len(changes) == 1
    text = changes[0].describe()
    assert text.startswith("F1 dropped −") and "from commit 16abcde on 2026-11-17" in text
    assert text.endswith("3 runs ago")


def test_trend_plot_with_one_point_and_with_a_failed_run(tmp_path: Path) -> None:
    from qa.gating.baselines import Baseline

    baseline = Baseline.from_dict({
        "key": KEY, "provenance": {"measured_by": "t", "date": "2026-11-01"},
        "metrics": {"f1": {"value": 90.0, "tolerance": 1.0, "unit": "points",
                           "higher_is_better": True}}})
    one = plot_trend(_history([90.2]), tmp_path / "one.png", {"torch/cpu/tiny-roformer__synthetic":
                                                              baseline})
    assert one is not None and one.stat().st_size > 5000
    values = [v - (1.5 if i >= 12 else 0) for i, v in enumerate(_noise(7))]
    many = plot_trend(_history(values, {5: "failed"}), tmp_path / "many.png",
                      {"torch/cpu/tiny-roformer__synthetic": baseline})
    assert many is not None and many.read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- like against like
NIGHTLY: dict = {}  # the profile's config as-is
AD_HOC = {"train": {"max_steps": 30}}  # qa-bench run --out /tmp/x --set train.max_steps=30


def _run(i: int, f1: float, config: dict, fingerprint: str = "fp-smoke",
         commit: str | None = None) -> RunResult:
    return RunResult(key=dict(KEY), config=config, metrics={"f1": f1, "exact_match": f1 - 1},
                     timings={"train_samples_per_s": 100.0}, dataset_fingerprint=fingerprint,
                     environment={"git_commit": commit or f"{i:02d}abcdef0123"},
                     finished_at=f"2026-11-{i % 28 + 1:02d}T03:00:00")


def test_ad_hoc_runs_in_the_history_make_no_false_change_point() -> None:
    """Four ad-hoc ``--set`` runs (F1 60) appended after 20 nightlies: grouped by entry alone
    (before) they were a persistent step down of the nightly's line; as a series of their own
    they neither step the nightly nor (4 points) themselves."""
    nightly = [_run(i, v, NIGHTLY) for i, v in enumerate(_noise(7))]
    history = nightly + [_run(20 + i, 60.0, AD_HOC) for i in range(4)] + [
        _run(24, _noise(7)[-1], NIGHTLY)]
    joined = [r.metrics["f1"] for r in history]  # what by_entry fed the detector
    assert [s.index for s in find_steps(joined)] == [20]  # the false step, shown
    assert detect_changes(history) == []
    assert len(select(history)) == 2  # two series of one entry, each labelled apart
    labels = sorted(select(history))
    assert all(label.startswith("torch/cpu/tiny-roformer__synthetic [config ") for label in labels)


def test_ad_hoc_runs_do_not_hide_a_change_point_of_the_nightly() -> None:
    """The nightly drops 3 points from run 12; ad-hoc runs of another config at the old level,
    interleaved after it, hid that step when joined; apart, it is found at its run."""
    history = []
    for i, v in enumerate(_noise(7)):
        history.append(_run(i, v - (3 if i >= 12 else 0), NIGHTLY))
        if i >= 12:
            history.append(_run(i, 90.0 + (i % 2) * 0.3, AD_HOC, fingerprint="fp-120-contexts"))
    assert find_steps([r.metrics["f1"] for r in history]) == []  # hidden when joined
    nightly_key = series_key(history[0])
    changes = [c for c in detect_changes(history, keys=[nightly_key]) if c.metric == "f1"]
    assert len(changes) == 1 and changes[0].describe().startswith("F1 dropped −3")
    assert "from commit 12abcde" in changes[0].describe()
    assert changes[0].entry == "torch/cpu/tiny-roformer__synthetic"  # one series shown: no tag


def test_a_run_report_draws_its_own_series_and_counts_the_others(tmp_path: Path) -> None:
    from qa.reporting.report import render_markdown

    history = [_run(i, 90.0, NIGHTLY) for i in range(5)] + [_run(5, 60.0, AD_HOC)]
    text = render_markdown([history[-1]], [], history=history)
    assert "5 run(s) of these entries in the history had another config or data" in text
    assert "| torch/cpu/tiny-roformer__synthetic | 1 | 60.00 → 60.00" in " ".join(text.split())
    assert plot_trend(history, tmp_path / "own.png", keys=[series_key(history[-1])]).exists()
    assert plot_trend(history, tmp_path / "all.png").exists()  # two series: two rows


def test_dirty_runs_are_labelled_dirty_in_changes_and_ticks() -> None:
    """Two ad-hoc runs on one commit with local changes are not labelled as the clean commit."""
    values = [v - (1.5 if i >= 16 else 0) for i, v in enumerate(_noise(7))]
    history = [_run(i, v, NIGHTLY, commit=f"{i:02d}abcdef0123" + ("-dirty" if i >= 16 else ""))
               for i, v in enumerate(values)]
    change = next(c for c in detect_changes(history) if c.metric == "f1")
    assert "from commit 16abcde+dirty on" in change.describe()
    assert _tick(history[16]).startswith("16abcde+dirty\n")
    assert _tick(history[15]).startswith("15abcde\n")
