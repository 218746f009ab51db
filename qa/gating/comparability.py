"""Like against like: the one place that says whether two runs' numbers may judge each other.

Two tiers over ``qa.config.schema.comparable_config`` (the config outside hardware and local paths):

- **workload** — every comparable field except ``JUDGED_SETTINGS``, plus the dataset
  fingerprint. A baseline measured on another workload does not judge a run: its verdicts are
  ``"not_comparable"`` with the differing fields named (``qa.gating.verdicts``). A new config field
  is
  workload unless it is added to ``JUDGED_SETTINGS`` (default-deny: the safe direction).
- **settings** — ``JUDGED_SETTINGS``: optimizer and implementation knobs that must not change
  the numbers beyond tolerance, so a run with other values is still judged against the same
  baseline (``--set train.learning_rate=0`` fails its gates), with a caveat naming them.

A field that one side lacks (a baseline or result written before the field existed) counts at
its ``RunConfig`` default: adding a field does not make every committed baseline incomparable.

The history's series (``qa.reporting.trend``) are stricter: runs join one line only with the same
full
comparable config (``qa.config.schema.config_hash``) and dataset fingerprint (``series_key``), so an
ad-hoc ``--set`` run is a series of its own and never bends the nightly's line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from qa.config.schema import RunConfig, comparable_config, config_hash
from qa.errors import QABenchError

if TYPE_CHECKING:
    from qa.gating.baselines import Baseline
    from qa.results.store import RunResult

# Settings judged against the same baseline; everything else comparable is workload.
JUDGED_SETTINGS = ("train.learning_rate", "train.warmup_ratio", "train.weight_decay",
                   "train.dropout", "train.loss_scaling", "train.seed",
                   "model.attn_implementation", "train.torch_compile", "train.compile_eval",
                   "train.dynamic_padding", "train.group_by_length", "model.trust_remote_code")
FINGERPRINT = "dataset_fingerprint"
SHOWN = 3  # differences named in one verdict message; the rest are counted
LEGACY_NOTE = ("the baseline records no workload (written before qa-bench recorded it): "
               "compared by dataset fingerprint only")
UNCHECKED_NOTE = ("the baseline records no workload, and no dataset fingerprint on both sides: "
                  "judged without a comparability check")


def flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"section.key": value}``."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _defaults() -> dict[str, Any]:
    return flatten(comparable_config(RunConfig()))


def _filled(config: dict[str, Any]) -> dict[str, Any]:
    """The flat comparable config, fields it lacks at their ``RunConfig`` default."""
    return {**_defaults(), **flatten(comparable_config(config))}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``section.key: A -> B`` for every comparable setting that differs (``qa-bench compare``)."""
    flat_a, flat_b = flatten(comparable_config(a)), flatten(comparable_config(b))
    return [f"{k}: {flat_a.get(k, '<unset>')!r} -> {flat_b.get(k, '<unset>')!r}"
            for k in sorted(set(flat_a) | set(flat_b)) if flat_a.get(k) != flat_b.get(k)]


def workload(config: dict[str, Any], dataset_fingerprint: str | None = None) -> dict[str, Any]:
    """The fields that decide what was measured: flat, ``JUDGED_SETTINGS`` left out.

    With a ``dataset_fingerprint`` it is included under ``FINGERPRINT``.
    """
    flat = {k: v for k, v in _filled(config).items() if k not in JUDGED_SETTINGS}
    if dataset_fingerprint:
        flat[FINGERPRINT] = dataset_fingerprint
    return dict(sorted(flat.items()))


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``JUDGED_SETTINGS`` values of a config."""
    flat = _filled(config)
    return {k: flat.get(k) for k in JUDGED_SETTINGS}


_UNSET = object()


def _show(value: Any) -> str:
    return "<unset>" if value is _UNSET else str(value)


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``"data.synthetic_train_contexts: 1000 -> 120"`` per differing key, the data first."""
    keys = sorted(set(a) | set(b), key=lambda k: (k != FINGERPRINT, k))
    lines = []
    for key in keys:
        old, new = a.get(key, _UNSET), b.get(key, _UNSET)
        if old != new:
            name = "dataset fingerprint" if key == FINGERPRINT else key
            lines.append(f"{name}: {_show(old)} -> {_show(new)}")
    return lines


def summarise(lines: Sequence[str], shown: int = SHOWN) -> str:
    """The first ``shown`` lines joined, ``and N more`` for the rest."""
    more = len(lines) - shown
    return "; ".join(lines[:shown]) + (f" and {more} more" if more > 0 else "")


def recorded(results: Sequence[RunResult]) -> dict[str, Any]:
    """What a baseline built from ``results`` records: ``{"workload": ..., "settings": ...}``.

    ``settings`` maps each judged setting to the distinct values of the runs pooled.

    Raises:
        QABenchError: the results were measured on different workloads or data.
    """
    first = workload(results[0].config, results[0].dataset_fingerprint)
    for result in results[1:]:
        diff = differences(first, workload(result.config, result.dataset_fingerprint))
        if diff:
            raise QABenchError("cannot pool runs of different workloads into one baseline: "
                               + summarise(diff))
    pooled: dict[str, list[Any]] = {}
    for result in results:
        for key, value in settings(result.config).items():
            if value not in pooled.setdefault(key, []):
                pooled[key].append(value)
    first.pop(FINGERPRINT, None)  # kept in provenance.dataset_fingerprint
    return {"workload": first, "settings": {k: _ordered(v) for k, v in pooled.items()}}


def _ordered(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # e.g. None beside numbers: first-seen order
        return values


def check(result: RunResult, baseline: Baseline) -> tuple[list[str], str]:
    """Whether ``baseline`` may judge ``result``: (why not — empty when it may, a caveat).

    The caveat names judged settings that differ from the baseline's, or says that a legacy
    baseline (no ``provenance.workload``) was compared by dataset fingerprint only.
    """
    provenance = baseline.provenance
    base_print = provenance.get(FINGERPRINT) or None
    run_print = result.dataset_fingerprint or None
    prints = (base_print, run_print) if base_print and run_print else (None, None)
    recorded_workload = provenance.get("workload")
    if not isinstance(recorded_workload, dict):
        apart = differences({FINGERPRINT: prints[0]}, {FINGERPRINT: prints[1]})
        return apart, LEGACY_NOTE if prints[0] else UNCHECKED_NOTE
    before = workload(_nested(recorded_workload), prints[0])
    apart = differences(before, workload(result.config, prints[1]))
    return apart, _settings_caveat(provenance.get("settings"), settings(result.config))


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        if name:
            nested.setdefault(section, {})[name] = value
    return nested


def _settings_caveat(recorded_settings: Any, run: dict[str, Any]) -> str:
    if not isinstance(recorded_settings, dict):
        return ""
    changed = []
    for key, value in run.items():
        values = recorded_settings.get(key)
        if isinstance(values, list) and values and value not in values:
            old = ", ".join(_show(v) for v in values)
            changed.append(f"{key} {old} -> {_show(value)}")
    return "judged with other settings: " + summarise(changed) if changed else ""


class SeriesKey(NamedTuple):
    """What joins runs into one line of the trend: entry, full config hash, data, and whether
    the hardware was emulated (emulated numbers never stand for hardware, so they never share a
    line with real ones, even where a copied result kept the real entry id)."""

    entry: str
    config: str
    data: str
    emulated: bool = False

    def label(self) -> str:
        """``entry [config 1a2b3c4, data 1b3e609]`` — for an entry with several series."""
        return (f"{self.entry} [config {self.config[:7]}, data {self.data[:7] or '?'}"
                f"{', emulated' if self.emulated else ''}]")


def series_key(result: RunResult) -> SeriesKey:
    """The series ``result`` belongs to (missing fields at their defaults, see above)."""
    return SeriesKey(result.entry_id, config_hash(_nested(_filled(result.config))),
                     result.dataset_fingerprint or "",
                     bool((result.hardware or {}).get("emulated")))
