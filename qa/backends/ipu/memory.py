"""A static estimate of each IPU's In-Processor Memory for a pipelined training graph.

Why: an IPU config that does not fit fails only when Poplar compiles it on the pod, hours into a
nightly. This model answers "does it fit?" on any CPU, in microseconds, from the IPU config and
the run config alone (no poptorch, no optimum-graphcore, no model download), so that
``qa-bench run --preflight`` refuses such an entry before anyone books a pod.

What one IPU of the pipeline holds, as optimum-graphcore 0.7 sets it up (``IPUConfig._to_options``
and ``IPUTrainer.create_optimizer``), for the ``P`` parameters of the layers placed on it
(``layers_per_ipu``; the embeddings on IPU 0, the QA head on the last IPU):

* weights: ``P x w`` bytes, ``w`` = 2 in fp16 (optimum's default on a pod), 4 with ``fp32``;
* gradient accumulators: ``P x w`` (``accum_type`` is the weights' type);
* AdamW state: first moment ``P x w`` plus second moment ``P x 4`` (always fp32); on chip
  unless ``optimizer_state_offchip``, then only the largest tensor's state is streamed in at a
  time; divided by the replicas under replicated tensor sharding (only with more than one
  replica, as optimum sets it);
* stashed activations: a pipeline keeps each forward stage's saved tensors for the
  ``2 x (F - 1 - k) + 1`` micro batches in flight between stage ``k``'s forward and backward pass
  (``F`` forward stages). With ``recompute_checkpoint_every_layer`` only one ``b x s x h``
  tensor per layer is kept (the checkpoints); without it a whole layer's activations;
* the working set of one layer's forward and backward pass for one micro batch, by the
  per-layer activation count of Korthikanti et al. 2022 ("Reducing Activation Recomputation in
  Large Transformer Models", eq. 1: ``s b h (34 + 5 a s / h)`` bytes at 16 bits), scaled by the
  attention maps the model has (DeBERTa's disentangled attention has three);
* matmul temporaries: the IPU's ``matmul_proportion`` (poptorch's
  ``setAvailableMemoryProportion``) is the share of memory the planner may take for them,
  counted in full;
* a fixed per-IPU share for code, exchange and control (``FIXED_OVERHEAD_BYTES``), the one
  calibrated constant (see docs/ipu.md: the bracket the documented cases leave for it).

Capacity: a Colossus Mk2 GC200 IPU has 900 MB of In-Processor Memory (Graphcore's IPU-M2000
announcement, 2020-07; 1472 tiles). ``IPU_MEMORY_BYTES`` is 900e6 bytes; the 1472 x 624 KiB of
tile memory (940.6 MB) is not used, so the limit errs on the side of refusing.

Inference (``ShardedExecution``, no stash, no optimizer) is not modelled: training is the graph
that does not fit first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.backends.ipu.config import IPUSettings, check_layers
from qa.errors import QABenchError
from qa.task.models import TINY_MODELS

#: In-Processor Memory of one Mk2 GC200 IPU, bytes (Graphcore: "900MB ... In-Processor Memory").
IPU_MEMORY_BYTES = 900_000_000
#: Code, exchange and control per IPU, bytes: calibrated between the documented cases
#: (docs/ipu.md, "Memory model"), not measured.
FIXED_OVERHEAD_BYTES = 70_000_000
MB = 1e6


@dataclass(frozen=True)
class Architecture:
    """The shape of an encoder model, enough to count its parameters and activations."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    positions: int
    token_types: int = 2
    extra_embedding_params: int = 0  # DeBERTa's relative position embeddings
    extra_layer_params: int = 0  # DeBERTa's position projections per layer
    attention_maps: int = 1  # score matrices per head (DeBERTa: c2c, c2p, p2c)

    def layer_params(self) -> int:
        """One encoder layer: Q, K, V, output, two FFN matmuls, two layer norms."""
        h, i = self.hidden, self.intermediate
        return 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h + self.extra_layer_params

    def embedding_params(self) -> int:
        """Word, position and token-type embeddings and their layer norm."""
        return ((self.vocab + self.positions + self.token_types) * self.hidden + 2 * self.hidden
                + self.extra_embedding_params)

    def largest_tensor(self) -> int:
        """The largest single weight tensor of a layer (an FFN matrix)."""
        return self.hidden * self.intermediate


#: The nightly models' published shapes (their hub ``config.json``).
ARCHITECTURES: dict[str, Architecture] = {
    "bert-base-uncased": Architecture(768, 12, 12, 3072, 30522, 512),
    "bert-large-uncased": Architecture(1024, 24, 16, 4096, 30522, 512),
    "roberta-base": Architecture(768, 12, 12, 3072, 50265, 514, token_types=1),
    "distilbert-base-uncased": Architecture(768, 6, 12, 3072, 30522, 512, token_types=0),
    "deberta-base": Architecture(768, 12, 12, 3072, 50265, 512, token_types=0,
                                 extra_embedding_params=2 * 512 * 768,
                                 extra_layer_params=2 * 768 * 768 + 768, attention_maps=3),
}


def architecture_for(model_name: str, vocab_size: int | None = None) -> Architecture:
    """The architecture of a nightly model or a tiny model built here (``vocab_size`` then).

    Raises:
        QABenchError: a model whose shape is not known here.
    """
    name = model_name.rstrip("/").rsplit("/", 1)[-1]
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if name in TINY_MODELS:
        spec = TINY_MODELS[name]
        return Architecture(spec.hidden_size, spec.num_hidden_layers, spec.num_attention_heads,
                            spec.intermediate_size, vocab_size or 4000,
                            spec.max_position_embeddings)
    raise QABenchError(f"no architecture known for {model_name!r} in the IPU memory model "
                       f"(known: {', '.join([*ARCHITECTURES, *TINY_MODELS])})")


@dataclass(frozen=True)
class Workload:
    """What of the run config reaches the IPU's memory."""

    micro_batch: int
    sequence_length: int
    gradient_accumulation: int
    replicas: int
    fp32: bool = False
    masked_tokens: int = 0  # pre-training only: MLM logits per sequence on IPU 0


@dataclass
class IPUEstimate:
    """One IPU's estimate, bytes by component."""

    ipu: int
    layers: int
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def line(self) -> str:
        """``IPU1 (4 layers): 612.3 MB = weights 56.6 + ...``"""
        parts = " + ".join(f"{name} {value / MB:.1f}" for name, value in self.parts.items())
        return f"IPU{self.ipu} ({self.layers} layers): {self.total / MB:.1f} MB = {parts}"


def forward_stages(layer_ipus: list[int], ipus: int) -> list[int]:
    """The forward pipeline stage of each IPU (-1 where none runs there).

    poptorch counts a new stage each time the IPU changes along the model (``CompilerImpl::
    numPipelineStages``): embeddings on IPU 0, each layer on its IPU, the head on the last.
    """
    order = [0, *layer_ipus, ipus - 1]
    stage_of = [-1] * ipus
    stage = -1
    previous = None
    for ipu in order:
        if ipu != previous:
            stage += 1
            previous = ipu
            if stage_of[ipu] == -1:
                stage_of[ipu] = stage
    return stage_of


def layer_ipus(settings: IPUSettings, num_layers: int) -> list[int]:
    """The IPU of each encoder layer (``layers_per_ipu`` with wildcards expanded)."""
    split = check_layers(settings, num_layers)
    return [ipu for ipu, count in enumerate(split) for _ in range(count)]


def pipeline_stages(settings: IPUSettings, num_layers: int, training: bool = True) -> int:
    """poptorch's pipeline stage count: forward stages F, and 2F - 1 when training."""
    ipus = layer_ipus(settings, num_layers)
    order = [0, *ipus, settings.ipus_per_replica - 1]
    forward = 1 + sum(1 for a, b in zip(order, order[1:], strict=False) if a != b)
    return 2 * forward - 1 if training else forward


def estimate(settings: IPUSettings, arch: Architecture, work: Workload) -> list[IPUEstimate]:
    """Bytes per IPU of one replica for a pipelined training graph (see the module docstring)."""
    ipus = settings.ipus_per_replica
    where = layer_ipus(settings, arch.layers)
    stage_of = forward_stages(where, ipus)
    forward = max(stage_of) + 1
    w = 4 if work.fp32 else 2
    b, s, h = work.micro_batch, work.sequence_length, arch.hidden
    token_tensor = b * s * h * w
    layer_acts = (s * b * h * 34 + 5 * arch.attention_maps * arch.heads * s * s * b) * w / 2
    sharding = work.replicas if settings.replicated_tensor_sharding and work.replicas > 1 else 1
    proportions = settings.matmul_proportion
    estimates = []
    for ipu in range(ipus):
        layers = where.count(ipu)
        params = layers * arch.layer_params()
        largest = arch.largest_tensor() if layers else 0
        if ipu == 0:
            params += arch.embedding_params()
            largest = max(largest, arch.vocab * h)
        if ipu == ipus - 1:
            params += 2 * h + 2  # qa_outputs
        state_per_param = w + 4  # AdamW first moment (accum type) + second moment (fp32)
        state = (params if not settings.optimizer_state_offchip else largest) \
            * state_per_param / sharding
        stage = stage_of[ipu]
        depth = 2 * (forward - 1 - stage) + 1 if stage >= 0 else 0
        kept = token_tensor if settings.recompute_checkpoint_every_layer else layer_acts
        stash = depth * max(layers, 1 if stage >= 0 else 0) * kept
        live = layer_acts if layers else token_tensor * 2
        if ipu == 0 and work.masked_tokens:
            live += 2 * b * work.masked_tokens * arch.vocab * w
        proportion = (proportions[ipu] if isinstance(proportions, tuple) else proportions)
        estimates.append(IPUEstimate(ipu, layers, {
            "weights": params * w,
            "gradients": params * w,
            "optimizer": state,
            "stash": stash,
            "activations": live,
            "matmul": proportion * IPU_MEMORY_BYTES,
            "fixed": FIXED_OVERHEAD_BYTES,
        }))
    return estimates


def check_fits(settings: IPUSettings, arch: Architecture, work: Workload,
               capacity: float = IPU_MEMORY_BYTES) -> list[IPUEstimate]:
    """The estimates, when every IPU fits.

    Raises:
        QABenchError: one line naming the fullest IPU that does not fit and by how much.
    """
    estimates = estimate(settings, arch, work)
    over = [e for e in estimates if e.total > capacity]
    if over:
        worst = max(over, key=lambda e: e.total)
        others = f" (also IPU {', '.join(str(e.ipu) for e in over if e is not worst)})" \
            if len(over) > 1 else ""
        excess = (worst.total - capacity) / MB
        raise QABenchError(
            f"{settings.name}: does not fit IPU{worst.ipu}'s In-Processor Memory: estimated "
            f"{worst.total / MB:.0f} MB of {capacity / MB:.0f} MB, {excess:.0f} MB over{others}"
            f" (micro batch {work.micro_batch}, sequence {work.sequence_length}"
            f", {'fp32' if work.fp32 else 'fp16'}; largest: "
            f"{max(worst.parts, key=worst.parts.__getitem__)})")
    return estimates
