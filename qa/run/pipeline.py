"""One benchmark entry end to end: config → data → features → backend → answers → scores → result.

``run_entry`` never raises for a failure inside the entry: it returns a RunResult whose status
says what happened (``failed`` with the stage and cause, ``diverged`` on a non-finite loss), so
a matrix run goes on to the next entry. Only Ctrl-C (KeyboardInterrupt) propagates.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from qa import backends
from qa import progress as progress_report
from qa.config.schema import RunConfig
from qa.errors import QABenchError
from qa.measure.contention import CpuShare
from qa.measure.convergence import ConvergenceMonitor
from qa.measure.efficiency import efficiency_summary, measure_peak_flops, peak_memory
from qa.results.metricspec import timing_values
from qa.results.store import RunResult, environment_record
from qa.task import data, faults, models
from qa.task.features import tokenize_split
from qa.task.metrics import DEFAULT_NA_PROB_THRESH, compute_squad
from qa.task.postprocessing import postprocess_qa_predictions, postprocess_with_null_odds
from qa.task.preprocessing import (
    FastPathStats,
    prepare_train_features,
    prepare_validation_features,
)

log = logging.getLogger("qa")


class EntryTimeout(Exception):
    """The entry ran past ``--entry-timeout`` (raised by the runner's alarm)."""


STAGES = ("data", "model", "features", "compile", "train", "predict", "postprocess", "metrics")


def result_key(config: RunConfig) -> dict[str, str]:
    """The matrix key of an entry: backend, pod (or device), model, dataset."""
    backend = config.hardware.backend
    return {"backend": backend, "pod": backends.get(backend).result_slot(config),
            "model": config.model.name, "dataset": config.data.dataset}


def failed_result(config: RunConfig, status: str, stage: str, cause: str) -> RunResult:
    """The result of an entry that ended before measuring anything (timeout, launcher)."""
    return RunResult(key=result_key(config), config=config.to_dict(), status=status,
                     failure={"stage": stage, "cause": cause})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Stages:
    """Remembers the current stage so a failure can say where it happened."""

    def __init__(self) -> None:
        self.current = "setup"
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    def enter(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self._start
        self.current, self._start = name, now
        log.info("stage: %s", name)
        if name == "done":
            progress_report.end_stages()
        else:
            progress_report.stage(name)


def run_entry(config: RunConfig, cache_dir: Path | None = None, progress: bool = True) -> RunResult:
    """Run one matrix entry for one seed and return its RunResult (never raises for failures).

    Raises:
        KeyboardInterrupt: passed through so the caller can write a partial report.
        QABenchError: bad input (files, names, options), reported by the caller in one line.
    """
    cache_dir = cache_dir or models.cache_root(config.model)
    backend_cls = backends.get(config.hardware.backend)
    result = RunResult(key=result_key(config), config=config.to_dict(), started_at=_now(),
                       environment=environment_record(backend_cls.versions()))
    if faults.active():
        result.environment["injected_fault"] = faults.active()
    stages = _Stages()
    wall = time.perf_counter()
    try:
        _run(config, cache_dir, progress, result, stages)
    except (KeyboardInterrupt, QABenchError):
        # Ctrl-C, and bad input (a file, a name, an option): the caller reports it in one line
        # and exits 2 after saving what was already measured.
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the matrix goes on
        _record_failure(result, stages.current, exc, backend_cls.failure_status(exc))
    stages.enter("done")
    result.timings["wall_s"] = time.perf_counter() - wall
    result.timings["stage_s"] = {k: round(v, 3) for k, v in stages.seconds.items()}
    result.finished_at = _now()

    result.memory = peak_memory()
    return result


def _record_failure(result: RunResult, stage: str, exc: BaseException,
                    backend_status: str | None = None) -> None:
    """Record ``exc`` as the entry's failure; ``backend_status``: the backend's failure kind."""
    if backend_status is not None:
        result.status = backend_status
    elif isinstance(exc, EntryTimeout):
        result.status = "timeout"
    elif isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        result.status = "failed"
        exc = RuntimeError(f"out of memory: {exc}")
    else:
        result.status = "failed"
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    result.failure = {"stage": stage, "cause": f"{type(exc).__name__}: {cause}",
                      "traceback": "".join(traceback.format_exception(exc))[-4000:]}
    log.error("entry %s failed in stage %s: %s", result.entry_id, stage, cause)


def _run(config: RunConfig, cache_dir: Path, progress: bool, result: RunResult,
         stages: _Stages) -> None:

    dcfg = config.data
    version_2 = dcfg.version_2 or dcfg.dataset in ("squad_v2", "synthetic_v2")
    backend_cls = backends.get(config.hardware.backend)
    hardware = backend_cls.fingerprint(config)
    # The report and the gates import no backend: the backend's one line travels with the result.
    result.hardware = {**hardware, "description": backend_cls.describe(hardware)}
    stages.enter("data")
    splits, fingerprint = data.load(dcfg, cache_dir)
    result.dataset_fingerprint = fingerprint
    train_split, eval_split = splits["train"], splits["validation"]

    stages.enter("model")
    texts = (list(train_split["context"]) + list(train_split["question"])
             if models.is_tiny(config.model.name) and not config.model.vocab_file else None)
    loaded: dict[str, Any] = {}
    tokenizer, model = models.load(config.model, config.train, texts, dcfg.max_length, loaded)
    if loaded:
        # Where a pretrained model's weights came from and what loaded (only the new QA head).
        result.environment["model_source"] = loaded
    tokenizer = faults.tokenizer(tokenizer, config.model.lowercase)
    if not models.is_tiny(config.model.name):
        model = faults.pretrained_weights(model, config.train.seed)
    model = faults.model(model)

    stages.enter("features")

    fast_path = {"train": FastPathStats(), "validation": FastPathStats()}
    train_features = tokenize_split(train_split, tokenizer, prepare_train_features, dcfg,
                                    fingerprint, cache_dir, "train", fast_path["train"])
    eval_features = tokenize_split(eval_split, tokenizer, prepare_validation_features, dcfg,
                                   fingerprint, cache_dir, "validation", fast_path["validation"])
    train_features = faults.train_features(train_features)
    eval_features = faults.validation_features(eval_features, eval_split)

    ok, reason = backend_cls.available(config)
    if not ok:
        raise QABenchError(f"backend {config.hardware.backend!r} unavailable: {reason}")
    backend = backend_cls(padding_side=tokenizer.padding_side)

    stages.enter("compile")
    compile_timing = backend.compile(model, eval_features, config)

    monitor = _convergence_monitor(config, backend, tokenizer, eval_split, eval_features,
                                   version_2)
    # What other processes used of the CPUs while training and prediction were timed: a
    # shared machine's timings are reported, not judged (qa.measure.contention).
    shared = CpuShare()
    stages.enter("train")
    with shared:
        train_timing = backend.train(model, train_features, config, progress=progress,
                                     monitor=monitor)

    stages.enter("predict")
    with shared:
        predictions = backend.predict(model, eval_features, config, progress=progress)

    stages.enter("postprocess")
    pcfg = config.postprocess
    logits = (eval_split, eval_features, predictions.start_logits, predictions.end_logits)
    options = {"n_best_size": pcfg.n_best_size, "max_answer_length": pcfg.max_answer_length,
               "null_score_diff_threshold": pcfg.null_score_diff_threshold,
               "cls_token_id": tokenizer.cls_token_id}
    null_odds = None
    if version_2:
        answers, null_odds = postprocess_with_null_odds(*logits, **options)
    else:
        answers = postprocess_qa_predictions(*logits, **options)

    stages.enter("metrics")
    references = [{"id": i, "answers": a}
                  for i, a in zip(eval_split["id"], eval_split["answers"], strict=True)]
    # v2: the null odds as evaluate-v2.0.py's no-answer probabilities add best_exact/best_f1
    # and their thresholds (references, never gated). An infinite threshold replaces no
    # answer, so exact/f1 and the splits stay those of the answers as postprocessed.
    scores = compute_squad(answers, references, version_2=version_2, na_probs=null_odds,
                           na_prob_thresh=math.inf if version_2 else DEFAULT_NA_PROB_THRESH)
    result.metrics = normalise_metrics(scores)
    result.timings.update(train_timings(train_timing))
    result.timings["eval_samples_per_s"] = predictions.samples_per_s
    result.timings["eval_s"] = predictions.total_s
    if predictions.rounds:
        result.timings["eval_step_s"] = predictions.rounds
    if monitor is not None:
        result.timings["time_to_target"] = monitor.summary()
        if monitor.probe_median():
            # Samples per probe GFLOP: training speed relative to the machine's speed measured
            # in the same window (steadier than samples/s when a neighbour shares the cores).
            result.timings["train_samples_per_probe_gflop"] = (
                train_timing.samples_per_s / (monitor.probe_median() / 1e9))
            result.timings["probe_during_training"] = {
                "median_flops": monitor.probe_median(), "points": len(monitor.probe_flops)}
    result.timings["contention"] = shared.summary()
    result.timings["compile"] = compile_timing.to_dict()
    result.timings["compile_s"] = compile_timing.cold_s
    result.timings["features"] = {"train": len(train_features), "validation": len(eval_features),
                                  "train_examples": len(train_split),
                                  "validation_examples": len(eval_split),
                                  # Batches encoded pair by pair: correct features, lost speed.
                                  "fast_path": {k: v.to_dict() for k, v in fast_path.items()}}
    result.efficiency = _efficiency(model, train_features, config, train_timing)
    result.efficiency["parameters"] = models.parameter_count(model)

    # Per seed: accuracy for the accuracy baseline, timings so that a timing baseline's spread
    # comes from every separate run, not from the first seed's alone.
    result.seeds = [{"seed": config.train.seed, **result.metrics,
                     "timings": timing_values(result)}]


def _convergence_monitor(config: RunConfig, backend: Any, tokenizer: Any, eval_split: Any,
                         eval_features: Any, version_2: bool) -> Any:
    """The time-to-target monitor over the first ``target.examples`` validation examples."""
    from dataclasses import replace


    target = config.target
    if target.every <= 0:
        return None
    n = min(target.examples, len(eval_split))
    examples = eval_split.select(range(n))
    ids = set(examples["id"])
    keep = [i for i, e in enumerate(eval_features["example_id"]) if e in ids]
    features = eval_features.select(keep)
    # One untimed pass: the periodic evaluation must stay cheap and never touches the timings.
    quick = replace(config, train=replace(config.train, eval_timing_rounds=0))
    references = [{"id": i, "answers": a}
                  for i, a in zip(examples["id"], examples["answers"], strict=True)]
    pcfg = config.postprocess

    def evaluate(model: Any) -> dict[str, float]:
        predictions = backend.predict(model, features, quick, progress=False)
        answers = postprocess_qa_predictions(
            examples, features, predictions.start_logits, predictions.end_logits,
            n_best_size=pcfg.n_best_size, max_answer_length=pcfg.max_answer_length,
            version_2=version_2, null_score_diff_threshold=pcfg.null_score_diff_threshold,
            cls_token_id=tokenizer.cls_token_id)
        return normalise_metrics(compute_squad(answers, references, version_2=version_2))

    device = backends.get(config.hardware.backend).probe_device(config)

    def probe() -> float:

        # Median, not best: it should feel the load the training steps felt.
        return measure_peak_flops(device=device, dtype=_probe_dtype(config),
                                  seconds=0.1, min_rounds=3)["median_flops"]

    return ConvergenceMonitor(evaluate, target.metric, target.value, target.every, n,
                              probe=probe if device is not None else None)


def _probe_dtype(config: RunConfig) -> str:
    return backends.get(config.hardware.backend).compute_dtype(config)


def normalise_metrics(scores: dict[str, float]) -> dict[str, float]:
    """Official keys plus ``exact_match`` for v2 runs (whose official key is ``exact``)."""
    metrics = {k: float(v) for k, v in scores.items()}
    if "exact" in metrics and "exact_match" not in metrics:
        metrics["exact_match"] = metrics["exact"]
    return metrics


def train_timings(timing: Any) -> dict[str, Any]:
    """Throughput and step-time statistics (median, IQR) of the measured steps."""
    steps = np.asarray(timing.step_times)
    q1, median, q3 = (np.percentile(steps, [25, 50, 75]) if len(steps) else (0.0, 0.0, 0.0))
    losses = timing.loss_curve
    # With dynamic padding a step's time follows its batch length, so the raw step-time IQR is
    # mostly workload, not noise. Seconds per padded token (the compute actually run) removes
    # that; with static padding it is the step time over a constant.
    padded = np.asarray(timing.extra.get("padded_tokens_per_step") or [], dtype=float)
    per_token = steps / padded if len(padded) == len(steps) and len(steps) else steps
    t1, t2, t3 = (np.percentile(per_token, [25, 50, 75]) if len(per_token) else (0.0, 0.0, 0.0))
    return {
        "train_token_s": {"median": float(t2), "iqr": float(t3 - t1), "rounds": int(len(steps)),
                          "unit": "seconds per padded token"},
        "train_samples_per_s": timing.samples_per_s,
        "train_tokens_per_s": timing.tokens_per_s,
        "train_step_s": {"median": float(median), "iqr": float(q3 - q1), "q1": float(q1),
                         "q3": float(q3), "rounds": int(len(steps)),
                         "mean": float(statistics.fmean(steps)) if len(steps) else 0.0},
        "train_step_times": [round(t, 6) for t in timing.step_times],
        "train_total_s": timing.total_s,
        "train_steps": timing.steps,
        "samples_per_step": timing.samples_per_step,
        "first_step_s": timing.extra.get("first_step_s"),
        "world_size": timing.extra.get("world_size", 1),
        "loss": {"first": losses[0] if losses else None, "last": losses[-1] if losses else None,
                 "curve": [round(x, 4) for x in losses[:: max(1, len(losses) // 50)]]},
    }


def _efficiency(model: Any, features: Any, config: RunConfig, timing: Any) -> dict[str, Any]:

    lengths = np.asarray(features.with_format("numpy", columns=["attention_mask"])
                         ["attention_mask"]).sum(axis=1)
    seq = lengths.tolist() if config.train.dynamic_padding else config.data.max_length
    # The peak in the dtype the matmuls ran in: a bf16 run against an fp32 peak would overstate
    # MFU by the bf16/fp32 ratio of the device (about 15x on an H100).
    device = backends.get(config.hardware.backend).probe_device(config)
    probe = (measure_peak_flops(device=device, dtype=_probe_dtype(config))
             if device is not None else None)
    summary = efficiency_summary(model.config, seq, timing.samples_per_s, probe)
    summary["fast_paths"] = {"dynamic_padding": config.train.dynamic_padding,
                             "group_by_length": config.train.group_by_length,
                             "torch_compile": config.train.torch_compile,
                             "attn_implementation": getattr(
                                 model.config, "_attn_implementation", None),
                             "bf16": _probe_dtype(config) == "bfloat16",
                             "threads": config.hardware.threads or _torch_threads()}
    return summary


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()

