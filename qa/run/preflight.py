"""Every check of a run before any work, and the option values they turn into.

``qa.run.runner.prepare_run`` calls these in order (options, profile and entries, files,
baselines, the run folder, availability): each failure is one ``QABenchError`` line and exit 2,
with nothing written; an entry whose device, data or model is absent here is skipped with the
reason (``qa.run.availability``), the same under ``qa-bench run`` and pytest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from qa import backends
from qa.config.schema import RunConfig, apply_overrides
from qa.errors import QABenchError
from qa.gating import baselines
from qa.gating.outcome import EXIT_FAIL, EXIT_NOTHING_JUDGED, EXIT_OK, Outcome
from qa.results.store import entry_id
from qa.run.availability import unavailable
from qa.run.pipeline import result_key
from qa.run.profiles import Entry
from qa.task.data import SQUAD_FILES

#: ``--seeds N`` runs N seeds of every entry: more than this is not a run that ends.
MAX_SEEDS = 1000


def skip_reasons(entries: list[Entry]) -> dict[str, str]:
    """``entry id -> why`` for each entry whose device, data or model is absent here
    (``qa.run.availability``): the same skips under ``qa-bench run`` and pytest, in seconds."""
    reasons = {e.id: unavailable(e.config) for e in entries}
    return {entry: why for entry, why in reasons.items() if why is not None}


def result_id(entry: Entry) -> str:
    """The result id (``backend/pod/model__dataset``) an entry's results are filed under."""
    return entry_id(result_key(entry.config))


def check_fresh(out: Path) -> None:
    """Refuse a run folder that already holds a run: two runs are never mixed in one folder.

    Raises:
        QABenchError: ``out`` holds a manifest, results or a report.
    """
    held = [name for name in ("manifest.json", "results", "report.md")
            if (Path(out) / name).exists()]
    if held:
        raise QABenchError(f"--out {out} already holds a run ({held[0]}): choose a new folder "
                           "(runs are never mixed in one folder)")


def check_data_files(entries: list[Entry]) -> None:
    """The local data files an entry names exist: refused before the run folder is written.

    Raises:
        QABenchError: a ``data.train_file`` / ``data.validation_file`` that is not a file, or
            a SQuAD folder without the official dev file of the entry's dataset.
    """
    for entry in entries:
        data = entry.config.data
        for name in ("train_file", "validation_file"):
            path = getattr(data, name)
            if path and not Path(path).is_file():
                raise QABenchError(f"data.{name} = {path!r}: no such file")
        if data.squad_dir and data.dataset in SQUAD_FILES and not (
                data.train_file or data.validation_file):
            dev = Path(data.squad_dir) / SQUAD_FILES[data.dataset][1]
            if not dev.is_file():
                raise QABenchError(f"{dev} not found (squad_dir must hold the official "
                                   f"{dev.name})")


def replica_counts(value: str | None) -> list[int | None]:
    """``--replicas 2`` → [2]; ``--replicas 1,2`` → [1, 2]; absent → [None] (the config's)."""
    if value is None:
        return [None]
    try:
        counts = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise QABenchError(f"--replicas expects a number or a list like 1,2, got {value!r}") \
            from None
    if not counts or any(c < 1 for c in counts):
        raise QABenchError("--replicas must be at least 1")
    if len(set(counts)) < len(counts):
        raise QABenchError(f"--replicas {value}: a count listed twice (duplicate entries)")
    return counts


def check_writable(out: Path) -> None:
    """Fail before any work when the output folder cannot be written (leaves no empty folder)."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
        if created:
            out.rmdir()  # the results' writers create it again; a run with no result leaves none
    except OSError as exc:
        raise QABenchError(f"cannot write to output folder {out}: {exc.strerror or exc}") \
            from None


def check_baselines(entries: list[Entry], root: Path) -> None:
    """Load every entry's baseline before running anything: a bad file fails in seconds.

    Raises:
        QABenchError: a baseline file with bad JSON, a missing field, a bad tolerance, ...
    """
    for entry in entries:
        baselines.load_baseline(root, result_key(entry.config))


def split_names(value: str | None) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; None or empty → None (comma-separated CLI/pytest options)."""
    names = [v.strip() for v in (value or "").split(",") if v.strip()]
    return names or None


def seed_list(count: int | None, default: list[int], sets: list[str] | None = None) -> list[int]:
    """``--seeds N`` → 42, 43, …; ``--set train.seed=S`` → [S]; neither → the profile's seeds."""
    chosen = [item for item in sets or [] if item.partition("=")[0].strip() == "train.seed"]
    if chosen and count is not None:
        raise QABenchError("use --seeds N or --set train.seed=S, not both")
    if chosen:
        return [apply_overrides(RunConfig(), chosen).train.seed]
    if count is None:
        return list(default)
    if count < 1:
        raise QABenchError("--seeds must be at least 1")
    if count > MAX_SEEDS:
        raise QABenchError(f"--seeds {count}: must be at most {MAX_SEEDS}")
    return [42 + i for i in range(count)]


def check_entry_timeout(seconds: float | None) -> None:
    """``--entry-timeout`` must be a finite number of seconds > 0 when given."""
    if seconds is not None and not 0 < seconds < math.inf:
        raise QABenchError(f"--entry-timeout {seconds}: must be more than 0 seconds (and "
                           "finite)")


@dataclass(frozen=True)
class PodCheck:
    """One entry judged by its backend's static rules (``Backend.static_check``)."""

    entry: str
    checked: bool  # False: the backend has no static rules, nothing was judged
    refusal: str | None = None
    detail: str = ""


def check_pod_rules(entries: list[Entry]) -> list[PodCheck]:
    """``--preflight``: every entry against the rules its hardware would refuse it by, from the
    configs alone (no device, no SDK, no model download), before anyone books the hardware."""
    checks = []
    for entry in entries:
        verdict = backends.get(entry.config.hardware.backend).static_check(entry.config)
        if verdict is None:
            checks.append(PodCheck(entry.id, checked=False))
        else:
            checks.append(PodCheck(entry.id, True, verdict[0], verdict[1]))
    return checks


def format_pod_checks(checks: list[PodCheck]) -> str:
    """One line per entry: ``ok <entry> (<detail>)``, ``REFUSED <entry>: <why>`` or ``not
    checked``."""
    lines = []
    for check in checks:
        if not check.checked:
            lines.append(f"not checked {check.entry}: its backend has no static rules")
        elif check.refusal is None:
            lines.append(f"ok {check.entry} ({check.detail})")
        else:
            lines.append(f"REFUSED {check.entry}: {check.refusal}")
    return "\n".join(lines)


def pod_checks_outcome(checks: list[PodCheck]) -> Outcome:
    """0 when every entry was judged and passed, 1 when any was refused, 5 when none (or not
    all) could be judged (``qa.gating.outcome``'s codes)."""
    refused = [c for c in checks if c.checked and c.refusal is not None]
    unchecked = [c for c in checks if not c.checked]
    if refused:
        return Outcome(EXIT_FAIL, f"{len(refused)} of {len(checks)} entries would be refused")
    if unchecked or not checks:
        return Outcome(EXIT_NOTHING_JUDGED, f"{len(unchecked)} of {len(checks)} entries have no "
                                            "static rules to judge them by")
    return Outcome(EXIT_OK, f"all {len(checks)} entries pass the static rules")
