"""The run manifest: what a run folder was asked to deliver, written before anything runs.

``<run>/manifest.json`` names the profile, the commit and qa-bench version, the seeds, the whole
shard plan (every entry of the matrix with its estimated cost and shard) and which shard this
folder is. It is what lets ``qa-bench report`` name the entries a killed run never delivered, and
``qa-bench merge`` name the entries no shard delivered, and refuse to mix runs of different
profiles, matrices, commits or versions.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa import __version__
from qa.errors import QABenchError
from qa.files import read_json, write_json_atomic
from qa.results.store import RunResult, entry_id, git_commit
from qa.run.pipeline import result_key

if TYPE_CHECKING:
    from qa.run.sharding import ShardPlan

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


def qa_bench_version() -> str:
    """This package's version."""

    return __version__


def build_manifest(profile: str, plan: ShardPlan, shard: int | None,
                   seeds: list[int]) -> dict[str, Any]:
    """The manifest of a run of ``plan``'s shard ``shard`` (None: the whole matrix)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "profile": profile,
        "commit": git_commit(),
        "qa_bench_version": qa_bench_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seeds": list(seeds),
        "shard": None if shard is None else {"index": shard, "count": plan.count},
        "entries": [{**entry_record(a.entry, a.shard), "cost_s": round(a.cost, 1)}
                    for a in plan.assignments],
    }


def entry_record(entry: Any, shard: int | None = None) -> dict[str, Any]:
    """A manifest's record of one matrix entry: its id, its result id, its shard."""

    return {"id": entry.id, "result": entry_id(result_key(entry.config)), "shard": shard}


def write_manifest(run_dir: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically."""
    return write_json_atomic(Path(run_dir) / MANIFEST_FILE, manifest)


def read_manifest(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's manifest, or None for a folder written before manifests existed.

    Raises:
        QABenchError: the file exists but is not a valid manifest.
    """
    path = Path(run_dir) / MANIFEST_FILE
    if not path.exists():
        return None
    raw = read_json(path, "manifest")
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list) or any(
            not isinstance(e, dict) or not {"id", "result", "shard"} <= set(e)
            for e in raw["entries"]):
        raise QABenchError(f"{path}: not a qa-bench run manifest (needs 'entries' with "
                           "id, result and shard)")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise QABenchError(f"{path}: schema_version {raw.get('schema_version')!r} is not "
                           f"{SCHEMA_VERSION}")
    _check_fields(path, raw)
    return raw


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(path: Path, raw: dict[str, Any]) -> None:
    """Each field's type and range: a hand-edited or damaged manifest is one line, not a crash."""
    def bad(field: str, expected: str, value: Any) -> QABenchError:
        return QABenchError(f"{path}: field {field!r} must be {expected}, got {value!r}"[:300])

    for name in ("profile", "commit", "qa_bench_version", "created_at"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise bad(name, "a string", raw[name])
    seeds = raw.get("seeds", [])
    if not isinstance(seeds, list) or not all(_is_int(s) and s >= 0 for s in seeds):
        raise bad("seeds", "a list of integers >= 0", seeds)
    shard = raw.get("shard")
    count = None
    if shard is not None:
        if not (isinstance(shard, dict) and _is_int(shard.get("count")) and shard["count"] >= 1
                and _is_int(shard.get("index")) and 1 <= shard["index"] <= shard["count"]):
            raise bad("shard", "null or {\"index\": K, \"count\": N} with 1 <= K <= N", shard)
        count = shard["count"]
    seen: set[str] = set()
    for index, entry in enumerate(raw["entries"]):
        where = f"entries[{index}]"
        for name in ("id", "result"):
            if not isinstance(entry[name], str) or not entry[name]:
                raise bad(f"{where}.{name}", "a non-empty string", entry[name])
        if entry["shard"] is not None and not (
                _is_int(entry["shard"]) and entry["shard"] >= 1
                and (count is None or entry["shard"] <= count)):
            raise bad(f"{where}.shard", "null or a shard number" + (
                f" in 1 .. {count}" if count else " >= 1"), entry["shard"])
        if entry["result"] in seen:
            raise QABenchError(f"{path}: entry {entry['result']} is listed twice")
        seen.add(entry["result"])


def assigned(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries this folder was asked to run: its shard's, or all of them."""
    shard = manifest.get("shard")
    if not shard:
        return list(manifest["entries"])
    return [e for e in manifest["entries"] if e["shard"] == shard["index"]]


def missing(expected: list[dict[str, Any]], results: list[RunResult],
            skipped: dict[str, str] | None = None) -> list[str]:
    """Result ids of expected entries that no result delivered (failed ones were delivered;
    skipped ones could not run here and say why)."""
    delivered = {r.entry_id for r in results} | set(skipped or {})
    return [e["result"] for e in expected if e["result"] not in delivered]


def skipped_entries(manifest: dict[str, Any] | None) -> dict[str, str]:
    """``result id -> why`` of the entries the run skipped (absent device, data or model)."""
    raw = (manifest or {}).get("skipped") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise QABenchError("manifest.json: 'skipped' must map result ids to reasons")
    return dict(raw)


def identity(manifest: dict[str, Any] | None, results: list[RunResult]) -> dict[str, Any]:
    """What two run folders must share to be merged: profile, matrix, commit, version.

    Folders without a manifest fall back to their results' environment (no profile, no matrix).
    """
    if manifest is not None:
        return {"profile": manifest.get("profile"), "commit": manifest.get("commit"),
                "qa-bench version": manifest.get("qa_bench_version"),
                "matrix": tuple(sorted(e["id"] for e in manifest["entries"]))}
    env = next((r.environment for r in results if r.environment), {})
    return {"profile": None, "commit": env.get("git_commit"),
            "qa-bench version": (env.get("versions") or {}).get("qa-bench"), "matrix": None}
