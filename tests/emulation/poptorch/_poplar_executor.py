"""``PoplarExecutor``: an executable compiled for fixed shapes, attached to IPUs, run on the CPU.

What the emulation keeps from the real executor, because the suite's numbers depend on it:

* **one call = the whole combined batch**: device iterations x (gradient accumulation x
  replicas) micro batches; a training call runs the forward/backward of every micro batch and
  one optimizer step per device iteration, inside the call (the host never sees a gradient);
* **outputs per ``OutputMode``** (``Final``: the last micro batch of each replica; ``All``:
  every micro batch; ``Sum``: per replica, summed);
* **static shapes**: the first compile fixes the argument list and the micro-batch shapes;
  a call with others is refused;
* **compile is real work and is cached**: compiling captures the model's operator graph by
  running one micro batch (forward and, for training, backward) under a dispatch recorder, and
  writes it to ``executable_cache_dir`` keyed by a hash of the model, the blocks, the options
  and the input shapes; a later compile with the same key loads the file instead;
* **device ownership**: compiling attaches the executable to its IPUs; a second executable
  cannot attach while the first holds them (see ``_device``).

Replicas hold identical weights, so they run one after another on the one host model; their
gradients are summed (then averaged under ``ReductionType.Mean``) exactly as the all-reduce
would.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import torch

from . import _device
from .enums import OutputMode, ReductionType
from .optim import Optimizer
from .options import Options

VERSION = "3.3.0+emulated"
_LOSSES = threading.local()


def mark_loss(tensor: torch.Tensor) -> None:
    """Remember ``tensor`` as the loss of the forward pass now running (``identity_loss``)."""
    if getattr(_LOSSES, "stack", None) is not None:
        _LOSSES.stack.append(tensor)


def block_of(module: torch.nn.Module) -> tuple[str | None, int | None] | None:
    """The (user id, IPU id) ``BeginBlock`` gave ``module``, if any."""
    return getattr(module, "_emulated_block", None)


def _graph_ops(roots: list[torch.Tensor]) -> list[str]:
    """The autograd graph behind ``roots``, one operator name per node (the captured graph)."""
    ops, seen = [], set()
    stack = [t.grad_fn for t in roots if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        ops.append(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return ops


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _signature(kwargs: dict[str, Any], parts: int) -> list[tuple[str, list[int], str]]:
    """(name, micro-batch shape, dtype) of every tensor argument."""
    sig = []
    for name, value in kwargs.items():
        if isinstance(value, torch.Tensor):
            shape = list(value.shape)
            if not shape or shape[0] % parts:
                raise RuntimeError(
                    f"input {name!r} of shape {shape} does not split into {parts} micro batches "
                    "(micro batch x device iterations x replicas x gradient accumulation)")
            shape[0] //= parts
            sig.append((name, shape, str(value.dtype)))
        elif value is not None:
            raise TypeError(f"input {name!r} is a {type(value).__name__}: only tensors reach "
                            "the IPU")
    return sig


def _combine(outputs: list[Any]) -> Any:
    """Join per-micro-batch outputs: batched tensors concatenated, scalars stacked."""
    first = outputs[0]
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        if first.dim() == 0:
            return first if len(outputs) == 1 else torch.stack(outputs)
        return torch.cat(outputs)
    if isinstance(first, dict):
        return type(first)(**{k: _combine([o[k] for o in outputs]) for k in first})
    if isinstance(first, (tuple, list)):
        return type(first)(_combine([o[i] for o in outputs]) for i in range(len(first)))
    raise TypeError(f"cannot return an output of type {type(first).__name__} from the IPU")


def _sum(outputs: list[Any]) -> Any:
    first = outputs[0]
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        return torch.stack(outputs).sum(0)
    if isinstance(first, dict):
        return type(first)(**{k: _sum([o[k] for o in outputs]) for k in first})
    return type(first)(_sum([o[i] for o in outputs]) for i in range(len(first)))


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return type(value)(**{k: _detach(v) for k, v in value.items()})
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value)
    return value


class PoplarExecutor:
    """A model wrapped for the IPU by ``trainingModel`` or ``inferenceModel``."""

    def __init__(self, model: torch.nn.Module, options: Options | None, training: bool,
                 optimizer: Optimizer | None = None) -> None:
        if training and optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError("trainingModel needs a poptorch.optim optimizer")
        self._model = model
        self._options = options or Options()
        self._training = training
        self._optimizer = optimizer
        self._compiled: dict[str, Any] | None = None
        self.compile_seconds: float | None = None
        self.cache_hit: bool | None = None

    # -- what poptorch's executor exposes --------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        return self._model

    @property
    def options(self) -> Options:
        return self._options

    @property
    def training(self) -> bool:
        return self._training

    def __getattr__(self, name: str) -> Any:
        # Like poptorch, attributes the executor lacks are the wrapped model's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def isCompiled(self) -> bool:  # noqa: N802 - poptorch's names
        return self._compiled is not None

    def isAttachedToDevice(self) -> bool:  # noqa: N802
        return _device.is_attached(self)

    def attachToDevice(self) -> None:  # noqa: N802
        if self._compiled is None:
            raise RuntimeError("attachToDevice: the model has not been compiled yet")
        if _device.is_attached(self):
            raise RuntimeError("attachToDevice: already attached")
        if self._options.offline_target:
            raise RuntimeError("attachToDevice: compiled for an offline IPU target")
        _device.attach(self, self._compiled["ipus"])

    def detachFromDevice(self) -> None:  # noqa: N802
        if not _device.is_attached(self):
            raise RuntimeError("detachFromDevice: the executable is not attached to a device")
        _device.detach(self)

    def destroy(self) -> None:
        """Detach and free the executable; the next call compiles again."""
        _device.detach(self)
        self._compiled = None

    def setOptimizer(self, optimizer: Optimizer) -> None:  # noqa: N802
        if not self._training:
            raise RuntimeError("setOptimizer: an inference model has no optimizer")
        self._optimizer = optimizer

    def copyWeightsToHost(self) -> None:  # noqa: N802
        """No-op: emulated replicas compute on the host model's own tensors."""

    def copyWeightsToDevice(self) -> None:  # noqa: N802
        """No-op: emulated replicas compute on the host model's own tensors."""

    # -- compile ---------------------------------------------------------------------------
    def _micro_batches(self) -> int:
        opts = self._options
        accumulation = opts.Training.gradient_accumulation if self._training else 1
        return opts.device_iterations * opts.replication_factor * accumulation

    def _ipus_per_replica(self) -> int:
        ids = [b[1] for m in self._model.modules() if (b := block_of(m)) and b[1] is not None]
        ipus = max(ids) + 1 if ids else 1
        if self._options.auto_round_num_ipus:
            ipus = 1 << (ipus - 1).bit_length()
        return ipus

    def _cache_key(self, signature: list[Any]) -> str:
        blocks = [(name, *b) for name, m in self._model.named_modules() if (b := block_of(m))]
        params = [(n, list(p.shape), str(p.dtype)) for n, p in self._model.named_parameters()]
        raw = json.dumps({
            "poptorch": VERSION, "model": type(self._model).__qualname__, "params": params,
            "blocks": blocks, "options": self._options.signature(self._training),
            "inputs": signature,
            "optimizer": type(self._optimizer).__name__ if self._training else None,
        }, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Compile for these inputs (a combined batch), or load the cached executable."""
        if args:
            raise TypeError("the emulated executor takes keyword inputs only (as optimum passes)")
        started = time.perf_counter()
        signature = _signature(kwargs, self._micro_batches())
        key = self._cache_key(signature)
        folder = self._options.executable_cache_dir
        path = Path(folder) / f"{key}.popef" if folder else None
        if path is not None and path.is_file():
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("key") != key:
                raise RuntimeError(f"corrupt executable cache entry {path}")
            self.cache_hit = True
        else:
            entry = {"key": key, "ops": self._capture(kwargs, signature)}
            self.cache_hit = False
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(entry), encoding="utf-8")
                tmp.replace(path)
        ipus = self._options.replication_factor * self._ipus_per_replica()
        self._compiled = {"key": key, "signature": signature, "ops": len(entry["ops"]),
                          "ipus": ipus}
        self.compile_seconds = time.perf_counter() - started
        if not self._options.offline_target:
            _device.attach(self, ipus)

    def _capture(self, kwargs: dict[str, Any], signature: list[Any]) -> list[str]:
        """Trace one micro batch into an op list: its autograd graph (and backward, training).

        Like poptorch's tracer this runs the model once on the host; gradients it leaves are
        cleared, so compiling never changes what training computes.
        """
        names = [name for name, _, _ in signature]
        micro = {n: kwargs[n][: signature[i][1][0]] for i, n in enumerate(names)}
        self._model.train(self._training)
        with torch.enable_grad():
            output = self._forward(micro)
            roots = [self._loss(output)] if self._training else _tensors(output)
            ops = _graph_ops(roots)
            if self._training:
                roots[0].backward()
        self._model.zero_grad(set_to_none=True)
        return ops

    # -- run -------------------------------------------------------------------------------
    def _forward(self, inputs: dict[str, Any]) -> Any:
        _LOSSES.stack = []
        try:
            output = self._model(**inputs)
            output_losses = list(_LOSSES.stack)
        finally:
            _LOSSES.stack = None
        self._last_losses = output_losses
        return output

    def _loss(self, output: Any) -> torch.Tensor:
        """The loss poptorch differentiates: the ``identity_loss`` output, else the first."""
        if self._last_losses:
            return self._last_losses[-1]
        first = output["loss"] if isinstance(output, dict) else (
            output[0] if isinstance(output, (tuple, list)) else output)
        if not isinstance(first, torch.Tensor):
            raise RuntimeError("a training model must return its loss")
        return first.mean() if first.dim() else first

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise TypeError("the emulated executor takes keyword inputs only (as optimum passes)")
        if self._compiled is None:
            self.compile(**kwargs)
        if not _device.is_attached(self):
            raise RuntimeError("the executable is not attached to a device (attachToDevice())")
        signature = _signature(kwargs, self._micro_batches())
        if signature != self._compiled["signature"]:
            raise RuntimeError(
                f"{len(self._compiled['signature'])} arguments used to compile the model and "
                f"{len(signature)} provided, or shapes differ: compiled for "
                f"{self._compiled['signature']}, called with {signature}")
        return self._train(kwargs) if self._training else self._infer(kwargs)

    def _chunks(self, kwargs: dict[str, Any], index: int) -> dict[str, Any]:
        size = self._compiled["signature"][0][1][0]
        return {k: v[index * size:(index + 1) * size] for k, v in kwargs.items()
                if isinstance(v, torch.Tensor)}

    def _train(self, kwargs: dict[str, Any]) -> Any:
        opts = self._options
        optimizer = self._optimizer
        if optimizer is None:
            raise RuntimeError("trainingModel was given no optimizer")
        replicas, accumulation = opts.replication_factor, opts.Training.gradient_accumulation
        per_iteration = replicas * accumulation
        optimizer.gradient_divisor = per_iteration if (
            opts.Training.reduction == ReductionType.Mean) else 1.0
        optimizer.stochastic_rounding = opts.Precision.stochastic_rounding
        outputs: list[list[Any]] = []  # [iteration * accumulation + step][replica]
        self._model.train()
        for iteration in range(opts.device_iterations):
            optimizer.zero_grad(set_to_none=True)
            for step in range(accumulation):
                row = []
                for replica in range(replicas):
                    index = iteration * per_iteration + step * replicas + replica
                    output = self._forward(self._chunks(kwargs, index))
                    (self._loss(output) * optimizer.loss_scaling).backward()
                    row.append(_detach(output))
                outputs.append(row)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mode = OutputMode.Final if opts.output_mode == OutputMode.Default else opts.output_mode
        return self._select(outputs, mode)

    @torch.no_grad()
    def _infer(self, kwargs: dict[str, Any]) -> Any:
        opts = self._options
        self._model.eval()
        outputs = [[self._model(**self._chunks(kwargs, i * opts.replication_factor + r))
                    for r in range(opts.replication_factor)]
                   for i in range(opts.device_iterations)]
        mode = OutputMode.All if opts.output_mode == OutputMode.Default else opts.output_mode
        return self._select(outputs, mode)

    @staticmethod
    def _select(rows: list[list[Any]], mode: OutputMode) -> Any:
        if mode == OutputMode.All:
            return _combine([o for row in rows for o in row])
        if mode == OutputMode.Final:
            return _combine(rows[-1])
        if mode == OutputMode.Sum:
            return _combine([_sum([row[r] for row in rows]) for r in range(len(rows[0]))])
        raise NotImplementedError(f"OutputMode {mode.name} is not emulated")


def trainingModel(model: torch.nn.Module, options: Options | None = None,  # noqa: N802
                  optimizer: Optimizer | None = None) -> PoplarExecutor:
    """Wrap ``model`` for training: one call runs accumulation and the optimizer step."""
    return PoplarExecutor(model, options, training=True, optimizer=optimizer)


def inferenceModel(model: torch.nn.Module, options: Options | None = None) -> PoplarExecutor:  # noqa: N802
    """Wrap ``model`` for inference."""
    return PoplarExecutor(model, options, training=False)
