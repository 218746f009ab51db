"""RunResult: what one benchmark entry measured, with the config and environment that produced it.

Results are written atomically (temp file + rename) the moment they exist, and appended to an
append-only JSON-lines history; a torn last line (a run killed mid-write) is skipped with a warning.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa import shapes
from qa.errors import QABenchError
from qa.files import json_default, read_json, write_json_atomic
from qa.results.metricspec import METRICS

SCHEMA_VERSION = 1
#: The pod part of an emulated result's key ends with this (``pod16-emulated``): emulated results
#: and baselines are filed apart from real hardware's, and the key must agree with the
#: fingerprint's ``emulated`` (``check_emulated_mark``).
EMULATED_POD_SUFFIX = "-emulated"
STATUSES = ("ok", "failed", "diverged", "timeout", "interrupted")


@dataclass
class RunResult:
    """One matrix entry's outcome. ``to_dict`` is the JSON schema (schema_version 1)."""

    key: dict[str, str]
    config: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    efficiency: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)  # qa.measure.hardware fingerprint
    dataset_fingerprint: str = ""
    status: str = "ok"
    failure: dict[str, str] | None = None
    seeds: list[dict[str, Any]] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def entry_id(self) -> str:
        """``backend/pod/model__dataset`` — also the relative path of its baseline file."""
        return entry_id(self.key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "result") -> RunResult:
        """Validate and load a RunResult dict.

        Raises:
            QABenchError: not a RunResult (missing keys, wrong schema version).
        """
        if not isinstance(raw, dict):
            raise QABenchError(f"{source}: a RunResult must be a JSON object")
        missing = [k for k in ("key", "config", "metrics", "timings", "status") if k not in raw]
        if missing:
            raise QABenchError(f"{source}: not a RunResult (missing {', '.join(missing)})")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise QABenchError(
                f"{source}: schema_version {raw.get('schema_version')!r} is not {SCHEMA_VERSION}"
            )
        check_fields(raw, source)
        check_emulated_mark(raw, source)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


#: The RunResult fields that are JSON objects (``failure`` is one or null).
OBJECT_FIELDS = ("key", "config", "metrics", "timings", "memory", "efficiency", "environment",
                 "hardware")


def check_fields(raw: dict[str, Any], source: str) -> None:
    """The shape of every field a RunResult's readers use: objects where objects are read,
    strings for the key, a known status, scores in 0 .. 100, timings > 0, integer seeds.

    Raises:
        QABenchError: ``<file>: field 'metrics.exact_match' must be a finite number in
            0 .. 100, got 250`` and the like.
    """
    where = f"{source}: field"
    for name in OBJECT_FIELDS:
        if name in raw:
            shapes.obj(f"{where} {name!r}", raw[name])
    for name in ("backend", "model", "dataset"):
        shapes.text(f"{where} 'key.{name}'", raw["key"].get(name), empty=False)
    shapes.text(f"{where} 'key.pod'", raw["key"].get("pod"), optional=True)
    for section, values in raw["config"].items():
        shapes.obj(f"{where} 'config.{section}'", values)
    if raw["status"] not in STATUSES:
        raise QABenchError(f"{where} 'status' must be one of {', '.join(STATUSES)}, got "
                           f"{shapes.shown(raw['status'])}")
    shapes.obj(f"{where} 'failure'", raw.get("failure"), optional=True)
    for name in ("dataset_fingerprint", "started_at", "finished_at"):
        shapes.text(f"{where} {name!r}", raw.get(name, ""))
    shapes.metric_values(source, "metrics", raw["metrics"])
    _check_timings(f"{where} 'timings", raw["timings"])
    for index, seed in enumerate(shapes.array(f"{where} 'seeds'", raw.get("seeds", []))):
        at = f"{where} 'seeds[{index}]"
        shapes.obj(at + "'", seed)
        value = seed.get("seed", 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
            raise QABenchError(f"{at}.seed' must be an integer in 0 .. 2**32-1, got "
                               f"{shapes.shown(value)}")
        shapes.metric_values(source, f"seeds[{index}]", {k: v for k, v in seed.items()
                                                        if k not in ("seed", "timings")})
        for name, value in shapes.obj(at + ".timings'", seed.get("timings"), True).items():
            shapes.number(f"{at}.timings.{name}'", value, above=0, optional=True)


def check_emulated_mark(raw: dict[str, Any], source: str) -> None:
    """The key's pod and the hardware fingerprint agree on whether the hardware was emulated.

    Why: an emulated result filed under a real pod's key (or the reverse) would gate, and be
    gated by, the other kind of hardware's numbers; the two marks are written by one run, so a
    disagreement means the file was edited, copied or produced by a broken writer.

    Raises:
        QABenchError: ``<file>: key pod 'pod16' says real hardware but hardware.emulated is
            true ...``.
    """
    pod = str(raw["key"].get("pod") or "")
    by_key = pod.endswith(EMULATED_POD_SUFFIX)
    by_print = bool((raw.get("hardware") or {}).get("emulated"))
    if by_key != by_print:
        raise QABenchError(
            f"{source}: key pod {pod!r} says {'emulated' if by_key else 'real'} hardware but "
            f"hardware.emulated is {str(by_print).lower()}: an emulated result filed as real "
            "(or the reverse) is refused")


def _check_timings(where: str, timings: dict[str, Any]) -> None:
    """Every gated timing a verdict or a ratio reads: an object path to a number > 0 or null."""

    for spec in METRICS.values():
        for source in spec.sources:
            parts = source.split(".")
            if parts[0] != "timings":
                continue
            value: Any = timings
            for depth in range(1, len(parts)):
                if value is None:
                    break
                inner = ".".join(parts[1:depth])
                value = shapes.obj(f"{where}.{inner}'" if inner else f"{where}'", value) \
                    .get(parts[depth])
            shapes.number(f"{where}.{'.'.join(parts[1:])}'", value, above=0, optional=True)


def entry_id(key: dict[str, str]) -> str:
    """Path-safe id of a matrix entry: ``backend/pod/model__dataset``."""
    return "/".join(
        [
            safe_name(key.get("backend", "")),
            safe_name(key.get("pod") or "none"),
            f"{safe_name(key.get('model', ''))}__{safe_name(key.get('dataset', ''))}",
        ]
    )


def safe_name(name: str) -> str:
    """A file-name-safe form of a model/dataset id: no separators, no ``..``, no leading dot."""
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name))
    out = out.replace("..", "-").strip(".")
    return out or "unnamed"


#: The history's file name: beside the run folder unless ``--history`` says otherwise.
HISTORY_FILE = "history.jsonl"


def history_beside(run_dir: str | os.PathLike) -> Path:
    """The default history of a run folder: ``history.jsonl`` in the folder that holds it."""
    return Path(run_dir).parent / HISTORY_FILE


def save_result(result: RunResult, out_dir: str | os.PathLike,
                history: str | os.PathLike | None = None) -> Path:
    """Write ``<out_dir>/results/<entry_id>.json`` atomically and append it to the history.

    The history defaults to ``history.jsonl`` beside the run folder, shared by all runs.
    """
    out = Path(out_dir)
    path = write_json_atomic(out / "results" / f"{result.entry_id}.json", result.to_dict())
    append_history(history or history_beside(out_dir), result)
    return path


def load_result(path: str | os.PathLike) -> RunResult:
    """Load one RunResult JSON file.

    Raises:
        QABenchError: unreadable file, bad JSON or not a RunResult.
    """
    return RunResult.from_dict(read_json(path), source=str(path))


def load_run_dir(path: str | os.PathLike) -> list[RunResult]:
    """All RunResults of a run directory (``results/**/*.json``), or of one result file."""
    path = Path(path)
    if path.is_file():
        return [load_result(path)]
    if not path.is_dir():
        raise QABenchError(f"{path}: no such run directory or result file")
    files = sorted((path / "results").rglob("*.json"))
    if not files:
        raise QABenchError(f"{path}: no results/ in this run directory")
    return [load_result(f) for f in files]


def append_history(path: str | os.PathLike, result: RunResult) -> None:
    """Append one line to the JSON-lines history; one ``write`` so a line is whole or torn."""
    path = Path(path)
    line = json.dumps(result.to_dict(), sort_keys=True, default=json_default) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise QABenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_history(path: str | os.PathLike) -> list[RunResult]:
    """Read the history; unparseable lines (e.g. torn by ``kill -9``) are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QABenchError(f"cannot read the history {str(path)!r}: {exc.strerror or exc}") \
            from None
    results = []
    for number, data in enumerate(raw.split(b"\n"), start=1):
        if not data.strip():
            continue
        try:
            line = data.decode("utf-8")
            results.append(RunResult.from_dict(json.loads(line), source=f"{path}:{number}"))
        except (UnicodeDecodeError, json.JSONDecodeError, QABenchError) as exc:
            warnings.warn(f"{path}:{number}: skipping unreadable history line ({exc})",
                          stacklevel=2)
    return results


def environment_record(backend_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Versions, hardware and commit: enough to tell two runs' environments apart.

    Args:
        backend_versions: the packages the entry's backend reports (``Backend.versions``),
            after the common ones.
    """
    import importlib.metadata as md

    versions = {}
    for package in ("qa-bench", "torch", "transformers", "datasets", "tokenizers", "accelerate",
                    "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    versions.update(backend_versions or {})
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "versions": versions,
        "git_commit": git_commit(),
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
    except ImportError:
        pass
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The checkout's commit (with ``-dirty`` when it has changes), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def short_commit(commit: str | None) -> str:
    """A commit for a label: 7 hex digits, ``+dirty`` kept (``abc1234+dirty``); ``?`` if none."""
    if not commit:
        return "?"
    sha, dirty, _ = commit.partition("-dirty")
    return sha[:7] + ("+dirty" if dirty else "")
