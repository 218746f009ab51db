"""Published reference numbers (``baselines/reference.toml``): context in reports, never gates."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QABenchError
from qa.files import read_toml
from qa.results.metricspec import METRICS

# A reference may quote any gated metric (``qa.results.metricspec.METRICS``).
REFERENCE_METRICS = tuple(METRICS)


@dataclass(frozen=True)
class Reference:
    """A published number shown beside results for context; it never gates."""

    model: str
    dataset: str
    label: str
    metrics: dict[str, float]
    source: str
    url: str = ""
    hardware: str = ""
    note: str = ""
    aliases: tuple[str, ...] = ()

    def matches(self, key: dict[str, str]) -> bool:
        """Same dataset and the same model (or an alias, or a hub id ending in the name)."""
        model = key.get("model", "")
        names = (self.model, *self.aliases)
        return key.get("dataset") == self.dataset and any(
            model == n or model.endswith(f"/{n}") for n in names)


def load_references(path: str | os.PathLike) -> list[Reference]:
    """Published reference numbers (``[[reference]]`` tables); an absent file gives ``[]``.

    Raises:
        QABenchError: bad TOML or a reference without model, dataset, source or metrics.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = read_toml(path, "references")
    references = []
    items = raw.get("reference", [])
    if not isinstance(items, list):
        raise QABenchError(f"{path}: 'reference' must be an array of tables ([[reference]])")
    for index, item in enumerate(items):
        where = f"{path}: reference[{index}]"
        if not isinstance(item, dict):
            raise QABenchError(f"{where} must be a table")
        for name in ("model", "dataset", "source", "metrics"):
            if name not in item:
                raise QABenchError(f"{where}: missing field {name!r}")
        metrics = item["metrics"]
        if not isinstance(metrics, dict):
            raise QABenchError(f"{where}: metrics must be a table of metric = number")
        bad = [k for k, v in metrics.items() if k not in REFERENCE_METRICS or not _finite(v)]
        if bad:
            raise QABenchError(f"{where}: metrics.{bad[0]} is not a known metric with a number")
        for key, value in metrics.items():
            if METRICS[key].unit == "points" and not 0 <= value <= 100:
                raise QABenchError(f"{where}: metrics.{key} = {value}: must be in 0 .. 100 "
                                   "points")
            if METRICS[key].unit == "ratio" and value <= 0:
                raise QABenchError(f"{where}: metrics.{key} = {value}: must be > 0")
        for name in ("model", "dataset", "source", "label", "url", "hardware", "note"):
            if name in item and not isinstance(item[name], str):
                raise QABenchError(f"{where}: {name} must be a string, got {item[name]!r}")
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise QABenchError(f"{where}: aliases must be a list of names, got {aliases!r}")
        references.append(Reference(
            model=item["model"], dataset=item["dataset"], label=item.get("label", item["model"]),
            metrics={k: float(v) for k, v in item["metrics"].items()}, source=item["source"],
            url=item.get("url", ""), hardware=item.get("hardware", ""), note=item.get("note", ""),
            aliases=tuple(item.get("aliases", ())),
        ))
    return references


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
