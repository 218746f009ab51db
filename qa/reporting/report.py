"""Reports: markdown (tabulate, GitHub tables) and a trend plot (``qa.reporting.trend``,
matplotlib).

``write_report`` writes ``<run_dir>/report.md``, ``verdicts.json`` and ``trend.png``, and appends
the markdown to ``$GITHUB_STEP_SUMMARY`` inside a GitHub Actions job. ``render_run_dir`` rebuilds
the same report from those files alone (``qa-bench report DIR``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from qa.config.sections import stored
from qa.errors import QABenchError
from qa.files import read_json, write_json_atomic, write_text_atomic
from qa.gating.baselines import REFERENCES, load_baseline
from qa.gating.comparability import SeriesKey, series_key
from qa.gating.outcome import EXIT_FAIL, EXIT_NOTHING_JUDGED, EXIT_OK, decide
from qa.gating.references import Reference, load_references
from qa.gating.verdicts import Verdict, check_verdicts_file, gate
from qa.measure.hardware import describe
from qa.reporting.trend import detect_changes, left_out, plot_trend, select
from qa.results.metricspec import METRICS, MetricSpec, accuracy_specs, specs
from qa.results.store import RunResult, history_beside, load_run_dir, read_history

log = logging.getLogger(__name__)

SYMBOLS = {"pass": "✅ pass", "fail": "❌ fail", "improved": "⬆️ improved — update the baseline",
           "missing": "— missing baseline", "other_hardware": "— other hardware",
           "busy": "— busy machine", "not_comparable": "— not comparable"}
#: The report's first line, by exit code (``qa.gating.outcome``).
OUTCOME_WORDS = {EXIT_OK: "✅ OK", EXIT_FAIL: "❌ NOT OK", EXIT_NOTHING_JUDGED: "— NOTHING JUDGED"}
VERDICTS_FILE = "verdicts.json"
REPORT_FILE = "report.md"
PLOT_FILE = "trend.png"


def _cell(value: Any) -> str:
    """A table cell: ``—`` for nothing, pipes and newlines escaped for GitHub tables."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_value(value: float | None) -> str:
    """A number for a table: 1 decimal from 100, 2 from 1, else 3 significant digits."""
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.1f}"
    if magnitude >= 1 or value == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_delta(delta: float | None, unit: str) -> str:
    """``+0.42`` for points, ``-3.1%`` for ratios."""
    if delta is None:
        return "—"
    return f"{delta:+.2f}" if unit == "points" else f"{delta * 100:+.1f}%"


def format_tolerance(tolerance: float | None, unit: str) -> str:
    """``±0.50 pt`` for points, ``±5.0%`` for ratios."""
    if tolerance is None:
        return "—"
    return f"±{tolerance:.2f} pt" if unit == "points" else f"±{tolerance * 100:.1f}%"


def _table(headers: Sequence[str], rows: list[list[Any]], keep: int = 1) -> str:
    """A GitHub table; columns after the first ``keep`` that are empty in every row are dropped."""
    cells = [[_cell(v) for v in row] for row in rows]
    columns = [i for i in range(len(headers))
               if i < keep or any(row[i] != "—" for row in cells)]
    return tabulate([[row[i] for i in columns] for row in cells],
                    headers=[headers[i] for i in columns], tablefmt="github",
                    disable_numparse=True)


def _label(result: RunResult) -> str:
    """The entry id, plus the replica count where it is not 1 (same entry, scaled out)."""
    replicas = stored(result.config, "torch", "replicas") or 1
    return result.entry_id + (f" ×{replicas}" if replicas != 1 else "")


def _section(title: str, *body: str) -> list[str]:
    return [f"## {title}", "", *body, ""]


def _verdict_section(verdicts: Sequence[Verdict]) -> list[str]:
    if not verdicts:
        return _section("Verdicts", "_No metric was judged against a baseline._")
    rows = []
    for v in verdicts:
        why = f" ({v.message})" if v.status == "fail" and v.message else ""
        if v.status in ("other_hardware", "busy", "not_comparable"):
            message = v.message.removeprefix("other hardware — ")
            message = message.removeprefix("not comparable — ")
            why = f" ({message.removeprefix('busy machine — ')})"
        if v.note:
            why += f" ({v.note})"
        rows.append([v.entry, v.metric, format_value(v.value), format_value(v.baseline),
                     format_delta(v.delta, v.unit), format_tolerance(v.tolerance, v.unit),
                     SYMBOLS.get(v.status, v.status) + why])
    headers = ["Entry", "Metric", "Value", "Baseline", "Δ", "Tolerance", "Verdict"]
    return _section("Verdicts", "Points are absolute, ratios relative to the baseline.", "",
                    _table(headers, rows, keep=len(headers)))


def _timings_section(results: Sequence[RunResult]) -> list[str]:
    columns = specs(table="timings")
    rows = [[_label(r), *(_spec_cell(spec, r) for spec in columns)] for r in results]
    return _section("Timings", _table(["Entry", *(spec.header for spec in columns)], rows))


def _no_answer_section(results: Sequence[RunResult]) -> list[str]:
    columns = specs(table="no_answer")
    best = [spec for spec in columns if spec.name.startswith("best_")]
    rows = [[_label(r), *(_spec_cell(spec, r) for spec in columns)] for r in results
            if any(spec.extract(r) is not None for spec in best)]
    if not rows:
        return []
    return _section("SQuAD v2.0 no-answer thresholds (references, never gated)",
                    "evaluate-v2.0.py's best scores over the no-answer threshold, with the "
                    "null odds (null score - best span score) as the no-answer probabilities: "
                    "what a threshold tuned on these very questions would reach, beside the "
                    "answerable (HasAns) and unanswerable (NoAns) F1 of the answers as given.",
                    "", _table(["Entry", *(spec.header for spec in columns)], rows))


def _spec_cell(spec: MetricSpec, result: RunResult) -> Any:
    value = spec.cell(result)
    return format(value, spec.fmt) if spec.fmt and value is not None else value


def _convergence_section(results: Sequence[RunResult]) -> list[str]:
    rows = []
    for r in results:
        ttt = r.timings.get("time_to_target")
        if not ttt:
            continue
        curve = ttt.get("curve") or []
        last = curve[-1].get(ttt.get("metric")) if curve else None
        reached = ttt.get("steps") is not None
        rows.append([_label(r), f"{ttt.get('metric')} ≥ {format_value(ttt.get('target'))}",
                     ttt.get("steps") if reached else "not reached",
                     f"{ttt['fraction'] * 100:.0f} %" if reached else None,
                     ttt.get("train_s"), ttt.get("evaluations"), ttt.get("examples"), last])
    if not rows:
        return []
    headers = ["Entry", "target", "reached at step", "of training", "train seconds",
               "evaluations", "slice (examples)", "slice score at the end"]
    return _section("Time to target",
                    "A periodic evaluation on a held-out validation slice during training "
                    "(MLPerf-style): the first evaluation at or above the target.", "",
                    _table(headers, rows, keep=3))


def _fast_paths_section(results: Sequence[RunResult]) -> list[str]:
    rows = []
    for r in results:
        train, hardware = r.config.get("train", {}), r.config.get("hardware", {})
        used = {**{k: train.get(k) for k in ("dynamic_padding", "group_by_length",
                                             "torch_compile")},
                "threads": hardware.get("threads"),
                **{k: stored(r.config, "torch", k) for k in ("bf16", "replicas")},
                **((r.efficiency or {}).get("fast_paths") or {})}
        rows.append([_label(r), used.get("dynamic_padding"), used.get("group_by_length"),
                     used.get("torch_compile"), used.get("bf16"),
                     used.get("attn_implementation") or "—", used.get("threads"),
                     used.get("replicas")])
    headers = ["Entry", "dynamic padding", "group by length", "torch.compile", "bf16",
               "attention", "threads", "replicas"]
    return _section("Fast-path options", _table(headers, rows))


def _references_section(results: Sequence[RunResult],
                        references: Sequence[Reference] | None) -> list[str]:
    rows: list[list[Any]] = []
    quoted = [spec for spec in METRICS.values()
              if any(spec.name in ref.metrics for ref in references or ())]
    for r in results:
        for ref in references or ():
            if ref.matches(r.key) and r.status == "ok":
                cells = [v for spec in quoted
                         for v in (ref.metrics.get(spec.name), spec.extract(r))]
                rows.append([_label(r), ref.label, *cells, ref.hardware,
                             f"[{ref.source}]({ref.url})" if ref.url else ref.source])
    if not rows:
        return []
    headers = ["Entry", "Reference",
               *(h for spec in quoted for h in (f"published {spec.header}",
                                                f"this run {spec.header}")),
               "hardware", "source"]
    return _section("Published references (context only, never gates)",
                    "Other code, hardware and hyper-parameters: a sanity check, not a target.",
                    "", _table(headers, rows))


def _scaling_section(results: Sequence[RunResult]) -> list[str]:
    groups: dict[tuple[str, str, str], dict[int, float]] = {}
    spec = specs(role="scaling")[0]
    for r in results:
        throughput = spec.extract(r)
        if r.status == "ok" and throughput:
            shape = (int(stored(r.config, "torch", "nodes") or 1),
                     int(stored(r.config, "torch", "replicas") or 1))
            group = (r.key.get("backend", ""), r.key.get("model", ""), r.key.get("dataset", ""))
            groups.setdefault(group, {})[shape] = float(throughput)
    rows = []
    for (backend, model, dataset), by_shape in sorted(groups.items()):
        if len(by_shape) < 2:
            continue
        base = min(by_shape, key=lambda s: (s[0] * s[1], s))
        per_base = by_shape[base] / (base[0] * base[1])
        for (nodes, replicas), throughput in sorted(by_shape.items(),
                                                    key=lambda i: (i[0][0] * i[0][1], i[0])):
            world = nodes * replicas
            rows.append([f"{backend}/{model}__{dataset}", nodes, replicas, world, throughput,
                         throughput / world, f"{throughput / world / per_base:.0%}",
                         f"vs {base[0] * base[1]} process{'es' if base[0] * base[1] > 1 else ''}"])
    if not rows:
        return []
    headers = ["Model", "nodes", "replicas per node", "world size", spec.header,
               f"{spec.header} per process", "efficiency", "relative"]
    return _section("Scaling efficiency", "Efficiency = samples/s per process relative to the "
                    "smallest world size (processes = nodes × replicas per node).", "",
                    _table(headers, rows, keep=len(headers)))


def _seeds_section(results: Sequence[RunResult]) -> list[str]:
    accuracy = accuracy_specs()
    rows = [[r.entry_id, s.get("seed"), *(spec.seed_value(s) for spec in accuracy)]
            for r in results if len(r.seeds) > 1 for s in r.seeds]
    if not rows:
        return []
    headers = ["Entry", "seed", *(spec.header for spec in accuracy)]
    return _section("Seeds", "The metrics above are the mean over these seeds.", "",
                    _table(headers, rows, keep=len(headers)))


def _trend_section(history: Sequence[RunResult] | None, plot_path: str | None,
                   keys: Sequence[SeriesKey] | None = None) -> list[str]:
    trended = specs(role="trend")
    changes = [f"- {'⚠️' if c.worse else 'ℹ️'} `{c.entry}`: {c.describe()}"
               for c in detect_changes(history or (), keys=keys)]
    rows = [[label, len(runs), *(_first_last([spec.extract(r) for r in runs if r.status == "ok"])
                                 for spec in trended)]
            for label, (_, runs) in sorted(select(history or (), keys=keys).items())]
    names = " and ".join(spec.header for spec in trended)
    body = [f"![{names} per entry over the history]({plot_path})", ""] if plot_path else []
    if rows:
        body.append(_table(["Entry", "runs", *(f"{spec.header} first → last" for spec in trended)],
                           rows))
        other = left_out(history or (), keys) if keys is not None else 0
        if other:
            body += ["", f"{other} run(s) of these entries in the history had another config or "
                     "data (e.g. ad-hoc `--set` runs, another profile): a series of their own, "
                     "not joined to this one."]
    if rows:
        body += ["", "Change points (a level shift that persisted ≥ 3 runs, "
                 "see qa/reporting/changepoint.py):", "", *(changes or ["- none detected"])]
    return _section("Trend", *body) if body else []


def _first_last(values: list[float | None]) -> str | None:
    return f"{format_value(values[0])} → {format_value(values[-1])}" if values else None


def _notes_section(results: Sequence[RunResult], notes: Iterable[str] | None) -> list[str]:
    lines = [f"- {note}" for note in notes or ()]
    for r in results:
        for name in ("repeat", "notes", "reproducibility"):
            value = r.timings.get(name)
            if value in (None, "", [], {}):
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
            elif isinstance(value, list):
                value = "; ".join(str(v) for v in value)
            lines.append(f"- `{r.entry_id}` {name}: {value}")
    return _section("Reproducibility notes", *lines) if lines else []


def _environment_section(results: Sequence[RunResult]) -> list[str]:
    distinct: dict[str, tuple[list[str], dict[str, Any], dict[str, Any]]] = {}
    for r in results:
        env = r.environment or {}
        both = json.dumps([env, r.hardware], sort_keys=True, default=str)
        distinct.setdefault(both, ([], env, r.hardware or {}))[0].append(r.entry_id)
    body: list[str] = []
    for entries, env, hardware in distinct.values():
        if not env:
            continue
        rows = [[k, env[k]] for k in ("python", "platform", "cpu", "cores", "gpu", "cuda",
                                      "torch_threads", "git_commit") if env.get(k) is not None]
        if hardware:
            rows.append(["hardware fingerprint", describe(hardware)])
        rows += [[package, version] for package, version in (env.get("versions") or {}).items()]
        who = "All entries" if len(distinct) == 1 else ", ".join(f"`{e}`" for e in entries)
        body += [f"{who}:", "", _table(["", "value"], rows, keep=2), ""]
    return _section("Environment", *body) if body else []


def _failures_section(results: Sequence[RunResult]) -> list[str]:
    rows = [[r.entry_id, r.status, (r.failure or {}).get("stage"),
             str((r.failure or {}).get("cause") or "")[:300]]
            for r in results if r.status != "ok"]
    if not rows:
        return []
    return _section("Failures", _table(["Entry", "status", "stage", "cause"], rows, keep=4))


def render_markdown(results: Sequence[RunResult], verdicts: Sequence[Verdict],
                    references: Sequence[Reference] | None = None,
                    history: Sequence[RunResult] | None = None, plot_path: str | None = None,
                    title: str = "qa-bench report", incomplete: bool = False,
                    notes: Iterable[str] | None = None,
                    missing: Sequence[str] | None = None,
                    skipped: Mapping[str, str] | None = None) -> str:
    """The whole report as GitHub-flavoured markdown.

    Args:
        results: this run's results (failed ones included: they fill the failures section).
        verdicts: ``verdicts.gate`` output for those results.
        references: published numbers shown beside the results, never as gates.
        history: earlier results (oldest first) for the trend summary.
        plot_path: link to the trend PNG, relative to where the report is written.
        title: the report's heading.
        incomplete: the run stopped early; says so in the header.
        notes: extra reproducibility notes, one bullet each.
        missing: entries the run was asked for that never delivered a result (they fail it).
        skipped: entries that could not run here (absent device, data or model) and why.
    """
    failed_runs = sum(r.status != "ok" for r in results)
    counts = summary_counts(verdicts)
    skipped = dict(skipped or {})
    outcome = decide(results, verdicts, list(missing or ()), list(skipped))
    headline = ("> **INCOMPLETE** — the run stopped before every entry finished; missing "
                f"entries are not regressions. So far: {outcome.reason}" if incomplete else
                f"**{OUTCOME_WORDS[outcome.code]}** — {outcome.reason} (exit {outcome.code})")
    lines = [f"# {title}", "", headline, ""]
    missing = list(missing or ())
    if missing:
        lines += [f"> **INCOMPLETE** — {len(missing)} expected "
                  f"entr{'y' if len(missing) == 1 else 'ies'} never delivered a result "
                  "(listed under Missing entries); the run fails until they run.", ""]
    lines += [f"{len(results)} entries ({len(results) - failed_runs} ok, {failed_runs} failed) · "
              f"gates: {counts['pass']} ✅ pass, {counts['fail']} ❌ fail, "
              f"{counts['improved']} ⬆️ improved, {counts['missing']} — missing baseline"
              + (f", {counts['other_hardware']} — other hardware (timings not judged)"
                 if counts["other_hardware"] else "")
              + (f", {counts['busy']} — busy machine (timings not judged)"
                 if counts["busy"] else "")
              + (f", {counts['not_comparable']} — not comparable (baseline of other work, "
                 "not judged)" if counts["not_comparable"] else "")
              + (f" · {len(missing)} ❌ missing (never ran)" if missing else ""), ""]
    if missing:
        lines += _section("Missing entries", "Expected by the run's manifest, delivered by no "
                          "result:", "", *(f"- `{m}`" for m in missing))
    if skipped:
        lines += _section("Skipped entries", "Not run here (nothing of theirs was judged):", "",
                          *(f"- `{e}` — {why}" for e, why in skipped.items()))
    for part in (_verdict_section(verdicts), _timings_section(results),
                 _convergence_section(results), _no_answer_section(results),
                 _fast_paths_section(results), _references_section(results, references),
                 _scaling_section(results), _seeds_section(results),
                 _trend_section(history, plot_path, [series_key(r) for r in results]),
                 _notes_section(results, notes),
                 _failures_section(results), _environment_section(results)):
        lines += part
    return "\n".join(lines).rstrip() + "\n"


def verdicts_to_json(verdicts: Iterable[Verdict]) -> list[dict[str, Any]]:
    """Verdicts as JSON-able dicts."""
    return [v.to_dict() for v in verdicts]


def verdicts_from_json(raw: Iterable[dict[str, Any]]) -> list[Verdict]:
    """Inverse of ``verdicts_to_json``."""
    return [Verdict.from_dict(item) for item in raw]


def write_report(run_dir: str | os.PathLike, results: Sequence[RunResult],
                 verdicts: Sequence[Verdict], references: Sequence[Reference] | None = None,
                 history: Sequence[RunResult] | None = None, title: str = "qa-bench report",
                 incomplete: bool = False, notes: Iterable[str] | None = None,
                 step_summary: bool = True, missing: Sequence[str] | None = None,
                 baselines_root: str | os.PathLike | None = None,
                 skipped: Mapping[str, str] | None = None) -> Path:
    """Write ``report.md``, ``verdicts.json`` and (with a history) ``trend.png`` atomically.

    When ``$GITHUB_STEP_SUMMARY`` is set (and ``step_summary``), the markdown is also appended
    there, without the image (a job summary cannot show a file from the run folder). With
    ``baselines_root`` the trend plot shades each entry's baseline band.

    Returns:
        The path of ``report.md``.
    """
    run_dir = Path(run_dir)
    notes = list(notes or ())
    write_json_atomic(run_dir / VERDICTS_FILE, {
        "schema_version": 1, "title": title, "incomplete": incomplete, "notes": notes,
        "missing": list(missing or ()), "skipped": dict(skipped or {}),
        "verdicts": verdicts_to_json(verdicts)})
    ids = [r.entry_id for r in results]
    bands = {r.entry_id: _baseline_or_none(baselines_root, r) for r in results} \
        if baselines_root is not None else None
    plot = plot_trend(history, run_dir / PLOT_FILE, bands, ids,
                      [series_key(r) for r in results]) if history else None
    text = render_markdown(results, verdicts, references, history,
                           PLOT_FILE if plot else None, title, incomplete, notes, missing,
                           skipped)
    path = write_text_atomic(run_dir / REPORT_FILE, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and summary:
        plain = render_markdown(results, verdicts, references, history, None, title,
                                incomplete, notes, missing, skipped)
        try:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(plain + "\n")
        except OSError as exc:  # the report itself is written; a summary is a bonus
            log.warning("cannot append to $GITHUB_STEP_SUMMARY (%s): %s", summary, exc)
    return path


def _baseline_or_none(root: str | os.PathLike, result: RunResult) -> Any:
    """The entry's baseline for the plot's band; a broken file is the verdicts' business."""
    try:
        return load_baseline(root, result.key)
    except QABenchError:
        return None


def read_verdicts_file(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``verdicts.json`` ({} when absent, e.g. a run killed before its report).

    Raises:
        QABenchError: the file exists but is not valid JSON.
    """
    path = Path(run_dir) / VERDICTS_FILE
    return check_verdicts_file(read_json(path, "verdicts"), str(path)) if path.exists() else {}


def render_run_dir(run_dir: str | os.PathLike, history_path: str | os.PathLike | None = None,
                   references_path: str | os.PathLike | None = REFERENCES,
                   baselines_root: str | os.PathLike | None = None,
                   incomplete: bool | None = None, step_summary: bool = True) -> str:
    """Re-render a run directory's report from its files; returns the markdown.

    Results come from ``results/``; verdicts from ``verdicts.json`` (or are recomputed against
    ``baselines_root`` when given); the history from ``history_path`` or the shared
    ``history.jsonl`` beside the run folder (where ``results.save_result`` appends).

    Raises:
        QABenchError: no results in ``run_dir`` or an unreadable ``verdicts.json``.
    """
    run_dir = Path(run_dir)
    results = load_run_dir(run_dir)
    meta = read_verdicts_file(run_dir)
    if baselines_root is not None:
        verdicts = [v for r in results for v in gate(r, load_baseline(baselines_root, r.key))]
    else:
        verdicts = verdicts_from_json(meta.get("verdicts", []))
    history_file = Path(history_path) if history_path else history_beside(run_dir)
    history = read_history(history_file)
    references = load_references(references_path) if references_path else []
    path = write_report(run_dir, results, verdicts, references, history or None,
                        title=meta.get("title", "qa-bench report"),
                        incomplete=meta.get("incomplete", False) if incomplete is None
                        else incomplete, notes=meta.get("notes"), step_summary=step_summary,
                        missing=meta.get("missing"), baselines_root=baselines_root,
                        skipped=meta.get("skipped"))
    return path.read_text(encoding="utf-8")


def summary_counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """How many verdicts have each status (for exit codes and one-line summaries)."""
    verdicts = list(verdicts)
    return {status: sum(v.status == status for v in verdicts) for status in SYMBOLS}

