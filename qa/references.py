"""Published reference numbers (``baselines/reference.toml``): context in reports, never gates."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QABenchError
from qa.metricspec import METRICS
from qa.readers import read_toml

# A reference may quote any gated metric (``qa.metricspec.METRICS``).
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


def load_references(path: str | os.PathLike = "baselines/reference.toml") -> list[Reference]:
    """Published reference numbers (``[[reference]]`` tables); an absent file gives ``[]``.

    Raises:
        QABenchError: bad TOML or a reference without model, dataset, source or metrics.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = read_toml(path, "references")
    references = []
    for index, item in enumerate(raw.get("reference", [])):
        where = f"{path}: reference[{index}]"
        for name in ("model", "dataset", "source", "metrics"):
            if name not in item:
                raise QABenchError(f"{where}: missing field {name!r}")
        metrics = item["metrics"]
        bad = [k for k, v in metrics.items() if k not in REFERENCE_METRICS or not _finite(v)]
        if bad:
            raise QABenchError(f"{where}: metrics.{bad[0]} is not a known metric with a number")
        references.append(Reference(
            model=item["model"], dataset=item["dataset"], label=item.get("label", item["model"]),
            metrics={k: float(v) for k, v in item["metrics"].items()}, source=item["source"],
            url=item.get("url", ""), hardware=item.get("hardware", ""), note=item.get("note", ""),
            aliases=tuple(item.get("aliases", ())),
        ))
    return references


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
