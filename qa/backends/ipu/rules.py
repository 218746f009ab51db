"""The static rules a pod refuses an entry by, checked from its configs alone (no poptorch).

Why: each of these fails only on the pod today, at wrap or compile time, after the booking and
the queue. They are read from the stack's own source, so the wording and the condition are the
hardware's (poptorch 3.x ``popart_compiler/source/Compiler.cpp``, popart
``willow/src/transforms/pipeline.cpp``, optimum-graphcore 0.7 ``IPUConfig._to_options``):

1. the IPU config loads and its layer split fits the model (``check_layers``);
2. pod size: replicas x IPUs per replica fit the pod, and the pod's IPUs divide by the pipeline
   length (the ``n_ipu`` API's ``replication_factor = n_ipu // ipus_per_replica``), so the global
   batch is micro batch x gradient accumulation x replicas with no IPU left idle;
3. pipeline depth: a pipelined *training* graph needs gradient accumulation >= its pipeline
   stages, 2F - 1 for F forward stages (poptorch counts a stage per change of IPU along the
   model, ``CompilerImpl::numPipelineStages``; popart's own check is the same condition);
4. memory: every IPU's estimate fits its In-Processor Memory (``qa.backends.ipu.memory``).

Inference is not pipelined by optimum-graphcore 0.7 (``ShardedExecution``), so poptorch's
``deviceIterations >= stages`` rule for pipelined inference does not apply, and optimum never
sets gradient accumulation on inference options (poptorch's ``inferenceModel`` refusal of
accumulation != 1 cannot be reached from a config here: the emulation checks it at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.backends.ipu.config import (
    config_name_for_model,
    global_batch_size,
    load_ipu_config,
    pod_ipus,
    replication_factor,
)
from qa.backends.ipu.memory import Workload, architecture_for, check_fits, pipeline_stages
from qa.errors import QABenchError

if TYPE_CHECKING:
    from qa.config.schema import RunConfig

#: What ``check_entry`` judges, in order (shown with each verdict).
RULES = ("config", "pod size", "pipeline depth", "memory")


@dataclass(frozen=True)
class RuleVerdict:
    """One entry judged by the static rules: ``refusal`` is None when it passed them all."""

    refusal: str | None
    detail: str


def check_entry(config: RunConfig) -> RuleVerdict:
    """Judge one IPU entry's configs by every rule; the first one that refuses is the verdict."""
    pod = config.hardware.pod or "pod4"
    try:
        name = config.ipu.ipu_config or config_name_for_model(config.model.name)
        settings = load_ipu_config(name)
        arch = architecture_for(config.model.name, config.model.vocab_size)
        stages = pipeline_stages(settings, arch.layers, training=True)  # checks the layer split
        replicas = replication_factor(settings, pod)  # raises on a replica bigger than the pod
        ipus = pod_ipus(pod)
        if ipus % settings.ipus_per_replica:
            raise QABenchError(f"{name}: {pod} has {ipus} IPUs, not a multiple of "
                               f"ipus_per_replica={settings.ipus_per_replica}")
        accumulation = config.train.gradient_accumulation_steps
        batch = global_batch_size(config.train.micro_batch_size, accumulation, replicas)
        if accumulation < stages:
            raise QABenchError(
                f"{name}: gradient accumulation {accumulation} < {stages} pipeline stages: "
                f"poptorch.Options().Training.gradientAccumulation must be greater than or "
                f"equal to the number of pipeline stages ({stages}) when using "
                f"poptorch.PipelinedExecution ({(stages + 1) // 2} forward stages on "
                f"{settings.ipus_per_replica} IPUs, {(stages - 1) // 2} more when training)")
        estimates = check_fits(settings, arch, Workload(
            micro_batch=config.train.micro_batch_size, sequence_length=config.data.max_length,
            gradient_accumulation=accumulation, replicas=replicas, fp32=config.ipu.fp32))
    except QABenchError as exc:
        return RuleVerdict(refusal=str(exc), detail="")
    fullest = max(estimates, key=lambda e: e.total)
    return RuleVerdict(refusal=None, detail=(
        f"{replicas} x {settings.ipus_per_replica} IPUs, global batch {batch}, "
        f"{stages} stages <= accumulation {accumulation}, fullest IPU{fullest.ipu} "
        f"{fullest.total / 1e6:.0f} MB of 900 MB"))
