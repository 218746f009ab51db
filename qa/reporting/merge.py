"""Judge run folders: one folder again (``qa-bench report``) or several shards as one run (merge).

Both give one verdict table, one report and one exit code with the rules of ``qa-bench run``: 1
when a gate failed, an entry did not finish, or an entry that was expected never delivered a
result ("missing"); 5 when nothing was judged; 0 otherwise (``qa.gating.outcome``). Verdicts are
recomputed against the baselines folder, so a folder whose run was killed before its report
(``kill -9``) is judged all the same.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QABenchError
from qa.files import write_json_atomic
from qa.gating import baselines
from qa.gating.outcome import Outcome, decide
from qa.gating.references import load_references
from qa.gating.verdicts import Verdict, gate
from qa.reporting import report
from qa.results.store import RunResult, append_history, history_beside, load_run_dir, read_history
from qa.run import profiles
from qa.run.manifest import (
    assigned,
    entry_record,
    identity,
    missing,
    read_manifest,
    skipped_entries,
    write_manifest,
)

log = logging.getLogger("qa")


@dataclass
class Judged:
    """What judging one or more run folders produced."""

    results: list[RunResult]
    verdicts: list[Verdict]
    missing: list[str]
    report_path: Path
    notes: list[str] = field(default_factory=list)
    appended: int = 0  # history lines written
    skipped: dict[str, str] = field(default_factory=dict)  # result id -> why it could not run

    @property
    def outcome(self) -> Outcome:
        """The exit code and its reason (``qa.gating.outcome``): 0 only where something was
        judged."""
        return decide(self.results, self.verdicts, self.missing, list(self.skipped))


def gate_all(results: list[RunResult], baselines_root: str | os.PathLike) -> list[Verdict]:
    """Every result's verdicts against its baseline under ``baselines_root``."""
    return [v for r in results
            for v in gate(r, baselines.load_baseline(baselines_root, r.key))]


def _load(path: Path) -> tuple[dict[str, Any] | None, list[RunResult]]:
    if not path.is_dir():
        raise QABenchError(f"{path}: no such run folder")
    manifest = read_manifest(path)
    if manifest is not None and not any((path / "results").rglob("*.json")):
        return manifest, []  # a shard that started and died before its first result
    return manifest, load_run_dir(path)  # a malformed result is refused, never "missing"


def _check_same(identities: list[tuple[Path, dict[str, Any]]], force: bool) -> list[str]:
    """Refuse (or with ``force`` note) runs that differ in profile, commit or version.

    Different matrices (e.g. one ``--pods`` filter per runner label) are merged with a note: the
    expected entries are then the union of the manifests' plans.
    """
    notes = []
    first_path, first = identities[0]
    for path, other in identities[1:]:
        if None not in (first["matrix"], other["matrix"]) and first["matrix"] != other["matrix"]:
            notes.append(f"{first_path} and {path} were planned over different matrices "
                         "(filters); expected entries are the union of their plans")
        for what in ("profile", "commit", "qa-bench version"):
            a, b = first[what], other[what]
            if a == b:
                continue
            shown = f"{a} in {first_path}, {b} in {path}"
            if not force:
                raise QABenchError(f"cannot merge runs of different {what}s ({shown}); "
                                   "pass --force to merge anyway")
            notes.append(f"merged despite different {what}s (--force): {shown}")
    return notes


def _combine(loaded: list[tuple[Path, list[RunResult]]], force: bool,
             notes: list[str]) -> list[RunResult]:
    """One result per entry; the same entry from two folders is refused unless forced."""
    chosen: dict[str, tuple[Path, RunResult]] = {}
    for path, results in loaded:
        for result in results:
            seen = chosen.get(result.entry_id)
            if seen is None:
                chosen[result.entry_id] = (path, result)
                continue
            if not force:
                raise QABenchError(f"entry {result.entry_id} is in both {seen[0]} and {path}; "
                                   "pass --force to keep the later one")
            later = max(seen, (path, result), key=lambda pr: pr[1].finished_at)
            notes.append(f"{result.entry_id} delivered twice: kept the one from {later[0]}")
            chosen[result.entry_id] = later
    return [result for _, result in sorted(chosen.values(), key=lambda pr: pr[1].entry_id)]


def _expected(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries the merged run should have: the whole plan (shards that never reported included)."""
    seen: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        for entry in manifest["entries"]:
            seen.setdefault(entry["id"], entry)
    return list(seen.values())


def _profile_matrix(name: str, manifests: list[dict[str, Any]], force: bool,
                    notes: list[str]) -> list[dict[str, Any]]:
    """The whole matrix of profile ``name`` as manifest entries (``merge --profile``).

    Per-pod shard jobs each plan only their pod's entries, so when every job of one pod dies,
    no delivered manifest names that pod's entries; the profile does.
    """

    profile = profiles.load_profile(name)
    for manifest in manifests:
        if manifest.get("profile") != profile.name:
            message = (f"--profile {profile.name}, but a folder ran profile "
                       f"{manifest.get('profile')}")
            if not force:
                raise QABenchError(f"{message}; pass --force to merge anyway")
            notes.append(f"merged despite {message} (--force)")
    return [entry_record(e) for e in profiles.expand(profile)]


def merge_runs(run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike,
               baselines_root: str | os.PathLike = baselines.ROOT,
               history: str | os.PathLike | None = None, force: bool = False,
               references: str | os.PathLike | None = baselines.REFERENCES,
               profile: str | None = None) -> Judged:
    """Merge shard run folders into ``out_dir``: results, manifest, verdicts, report, history.

    The history (default ``history.jsonl`` beside ``out_dir``) gets each merged result once: a
    result already there (same entry, start and finish time) is not appended again. Expected
    entries are the union of the folders' plans, plus the whole matrix of ``profile`` if given.

    Raises:
        QABenchError: a folder is not a run folder, or the runs differ (profile, commit,
            qa-bench version, an entry twice) and ``force`` is off.
    """
    paths = [Path(p) for p in run_dirs]
    out = Path(out_dir)
    if any(p.resolve() == out.resolve() for p in paths):
        raise QABenchError(f"--out {out} is one of the folders to merge; choose a new folder")
    loaded = [(p, *_load(p)) for p in paths]
    notes = _check_same([(p, identity(m, r)) for p, m, r in loaded], force)
    results = _combine([(p, r) for p, _, r in loaded], force, notes)
    manifests = [m for _, m, _ in loaded if m is not None]
    if len(manifests) < len(loaded):
        notes.append("some folders have no manifest.json (older qa-bench): their expected "
                     "entries are unknown, only delivered ones are judged")
    expected = _expected(manifests + ([{"entries": _profile_matrix(profile, manifests, force,
                                                                    notes)}]
                                      if profile else []))
    skips = {k: v for m in manifests for k, v in skipped_entries(m).items()}
    absent = missing(expected, results, skips)
    shards = {m["shard"]["index"] for m in manifests if m.get("shard")}
    count = next((m["shard"]["count"] for m in manifests if m.get("shard")), None)
    if count and len({tuple(sorted(e["id"] for e in m["entries"])) for m in manifests}) == 1:
        lost = [k for k in range(1, count + 1) if k not in shards]
        if lost:
            notes.append(f"shards never delivered: {', '.join(f'{k}/{count}' for k in lost)}")
    for result in results:
        write_json_atomic(out / "results" / f"{result.entry_id}.json", result.to_dict())
    if manifests:
        merged = {**manifests[0], "shard": None, "entries": expected, "skipped": skips,
                  "merged_from": [str(p) for p in paths]}
        write_manifest(out, merged)
    history_path = Path(history) if history else history_beside(out)
    appended = append_history_once(history_path, results)
    title = f"qa-bench report — merged from {len(paths)} run folder{'s' * (len(paths) > 1)}"
    judged = _judge_and_write(out, results, absent, baselines_root, history_path, references,
                              notes, title, skips=skips)
    judged.appended = appended
    return judged


def judge_run_dir(run_dir: str | os.PathLike, baselines_root: str | os.PathLike | None,
                  history: str | os.PathLike | None = None,
                  references: str | os.PathLike | None = baselines.REFERENCES) -> Judged:
    """Re-judge one run folder against the baselines and name entries it never delivered.

    With ``baselines_root`` None the verdicts stored in the folder are used as they are.

    Raises:
        QABenchError: not a run folder, or an invalid manifest, results or baseline file.
    """
    run_dir = Path(run_dir)
    manifest, results = _load(run_dir)
    skips = skipped_entries(manifest)
    if not results and not skips:
        raise QABenchError(f"{run_dir}: no results/ in this run folder")
    absent = missing(assigned(manifest), results, skips) if manifest else []
    notes = []
    stored = report.read_verdicts_file(run_dir)
    if baselines_root is None:
        verdicts = report.verdicts_from_json(stored.get("verdicts", []))
        notes.append("verdicts as stored in verdicts.json (not re-judged)")
    else:
        verdicts = None
    history_path = Path(history) if history else history_beside(run_dir)
    return _judge_and_write(run_dir, results, absent, baselines_root, history_path, references,
                            [*(stored.get("notes") or []), *notes],
                            stored.get("title", "qa-bench report"), verdicts, skips)


def _judge_and_write(out: Path, results: list[RunResult], absent: list[str],
                     baselines_root: str | os.PathLike | None, history_path: Path,
                     references: str | os.PathLike | None, notes: list[str], title: str,
                     verdicts: list[Verdict] | None = None,
                     skips: dict[str, str] | None = None) -> Judged:
    if verdicts is None:
        verdicts = gate_all(results, baselines_root or baselines.ROOT)
    refs = load_references(references) \
        if references and Path(references).exists() else []
    path = report.write_report(out, results, verdicts, references=refs,
                               history=read_history(history_path) or None, title=title,
                               incomplete=False, notes=notes, missing=absent,
                               baselines_root=baselines_root, skipped=skips)
    return Judged(results, verdicts, absent, path, notes, skipped=dict(skips or {}))


def append_history_once(path: str | os.PathLike, results: list[RunResult]) -> int:
    """Append the results the history does not hold yet (same entry, start and finish time).

    Returns:
        How many lines were appended.
    """

    def mark(r: RunResult) -> tuple[str, str, str]:
        return (r.entry_id, r.started_at, r.finished_at)

    have = {mark(r) for r in read_history(path)}
    new = [r for r in results if mark(r) not in have]
    for result in new:
        append_history(path, result)
    return len(new)
