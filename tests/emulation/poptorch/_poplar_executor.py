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
  cannot attach while the first holds them (see ``_device``);
* **refusals poptorch/popart make** (wording as theirs): a pipelined training graph whose
  gradient accumulation is below its pipeline stage count (forward stages = IPU switches + 1,
  training stages = 2 x forward - 1; ``popart_compiler/source/Compiler.cpp``), a pipelined
  inference graph whose device iterations are below its stage count, an ``inferenceModel``
  with gradient accumulation != 1, a model wrapped for training twice, a changed ``Options``
  after wrapping (frozen), an optimizer replaced with another type or changed constants;
  a second ``compile()`` is ignored (poptorch logs a warning);
* **the device keeps its own weights and optimizer**: weights are uploaded on attach
  (``copyWeightsToDevice``), a training call leaves the host copy stale until it is read
  (poptorch's implicit ``copyWeightsToHostIfNeeded`` when the wrapped model's parameters,
  buffers or ``forward`` are accessed), on ``detachFromDevice``/``destroy`` or an explicit
  ``copyWeightsToHost``; a host-side edit reaches the device only through
  ``copyWeightsToDevice`` (or re-attaching); hyper-parameters only through ``setOptimizer``.

Replicas hold identical weights, so they run one after another on the one host model; their
gradients are summed (then averaged under ``ReductionType.Mean``) exactly as the all-reduce
would.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
import os
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from . import _device, optim
from .enums import MeanReductionStrategy, OutputMode, ReductionType
from .options import Options, PipelinedExecution, ShardedExecution

VERSION = "3.3.0+emulated"
_LOSSES = threading.local()
_log = logging.getLogger("poptorch.emulation")
NO_EXECUTABLE_ERR = "Model has not been compiled or has been destroyed."

#: Test-only fault injection (the SDK A/B's proof that it catches a trainer bug): the named
#: fault makes the emulated stack behave as if optimum-graphcore had that bug.
FAULT_ENV = "QA_BENCH_IPU_EMULATION_FAULT"
FAULTS = {
    "skip-set-optimizer": "setOptimizer after compilation never reaches the device (a trainer "
                          "that does not push its learning-rate schedule)",
    "no-accumulation": "each optimizer step uses only the last micro batch's gradients "
                       "(gradient accumulation not applied)",
}
#: Executors running on the device now: a host-weight sync never fires meanwhile (the device
#: run borrows the host parameters' tensors, see ``PoplarExecutor._on_device``).
_RUNNING = [0]


class Error(RuntimeError):
    """``poptorch.Error``: what poptorch raises for a refused model or option."""


def fault() -> str | None:
    """The injected fault named by ``QA_BENCH_IPU_EMULATION_FAULT``, if any."""
    name = os.environ.get(FAULT_ENV, "").strip()
    if not name:
        return None
    if name not in FAULTS:
        raise RuntimeError(f"{FAULT_ENV}={name!r}: not a fault (one of {', '.join(FAULTS)})")
    return name


def is_wrapped(model: Any) -> bool:
    """Whether ``model`` is wrapped by a live ``trainingModel``."""
    return bool(getattr(type(model), "_emulated_training_wrapper", False))


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


def _signature(kwargs: dict[str, Any], parts: int,
               opts: Options | None = None) -> list[tuple[str, list[int], str]]:
    """(name, micro-batch shape, dtype) of every tensor argument."""
    sig = []
    for name, value in kwargs.items():
        if isinstance(value, torch.Tensor):
            shape = list(value.shape)
            if not shape or shape[0] % parts:
                raise AssertionError(
                    f"Invalid batch dimension: In the input {name!r} of shape {shape}, the batch "
                    f"dimension must be a multiple of Options.deviceIterations * "
                    f"Options.replicationFactor * Options.Training.gradientAccumulation = "
                    f"{parts} because it is used to calculate the batch size which will be "
                    "executed on the device in any given iteration.")
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
                 optimizer: Any = None, user_model: torch.nn.Module | None = None) -> None:
        if options is not None:
            if not isinstance(options, Options):
                raise Error(f"Invalid type: 'options' is of type {type(options)} "
                            "(Expected poptorch.Options)")
            options._freeze()  # the caller's object: any later change raises
            options = options.clone()
        else:
            options = Options()
        self._user_model = user_model or model
        self._model = model
        self._options = options
        self._training = training
        if training:
            if options.defaultOutputMode():
                options.outputMode(OutputMode.Final)
            if optimizer is None:
                optimizer = optim.SGD(self._user_model.parameters(), lr=0.01)
        else:
            if options.defaultOutputMode():
                options.outputMode(OutputMode.All)
            if options.Training.gradient_accumulation != 1:
                message = ("You must set poptorch.Options().Training.gradientAccumulation to 1 "
                           "or leave it as its default value (1) when running a "
                           "poptorch.inferenceModel().")
                if _pipelined(options):
                    message += (" Use poptorch.Options().deviceIterations to process a "
                                "sufficient number of batches each run for pipelined execution "
                                "instead.")
                raise Error(message)
            if optimizer is not None:
                raise AssertionError("Optimizer should be None for inference")
        self._optimizer: Any = None
        self._snapshot: dict[str, Any] | None = None
        self._device_optimizer: optim.DeviceOptimizer | None = None
        self._compiled: dict[str, Any] | None = None
        self._device: dict[str, torch.Tensor] = {}  # the IPU's weights and buffers, by name
        self._dirty_host_weights = False
        self._host_weights_version = 0
        self._last_losses: list[torch.Tensor] = []
        self.compile_seconds: float | None = None
        self.cache_hit: bool | None = None
        if optimizer is not None:
            self.setOptimizer(optimizer)
        self._options._freeze()
        if training:
            self._wrap_user_model()

    # -- the host model, wrapped as poptorch wraps it -----------------------------------------
    def _wrap_user_model(self) -> None:
        """Swap the user model's (and its parameters') classes for ones that sync on read.

        poptorch does the same (``PoptorchModel``/``PoptorchParameter`` in
        ``_poplar_executor.py``): reading the wrapped model's parameters, buffers or
        ``forward``, or any attribute of a parameter, first copies the device's weights back
        when a training call left the host copy stale.
        """
        parent = weakref.ref(self)
        base = type(self._user_model)

        def sync() -> None:
            executor = parent()
            if executor is not None:
                executor.copyWeightsToHostIfNeeded()

        class PoptorchModel(base):  # type: ignore[misc, valid-type]
            _emulated_training_wrapper = True

            def copyWeightsToHostIfNeeded(self) -> bool:  # noqa: N802
                executor = parent()
                return executor.copyWeightsToHostIfNeeded() if executor is not None else False

            def destroy(self) -> None:
                executor = parent()
                if executor is not None:
                    executor.destroy()

            def __getattribute__(self, name: str) -> Any:
                if name == "_host_weights_version":
                    executor = parent()
                    return None if executor is None else executor._host_weights_version
                if name in ("_buffers", "_parameters", "forward"):
                    sync()
                return object.__getattribute__(self, name)

        class PoptorchParameter(torch.nn.Parameter):
            def __getattribute__(self, name: str) -> Any:
                sync()
                return object.__getattribute__(self, name)

            @classmethod
            def __torch_function__(cls, func: Any, types: Any, args: Any = (),
                                   kwargs: Any = None) -> Any:
                return super().__torch_function__(func, types, args, kwargs or {})

        PoptorchModel.__name__ = PoptorchModel.__qualname__ = f"Poptorch{base.__name__}"
        self._base_classes = (base, {})
        for param in self._model.parameters():
            self._base_classes[1][id(param)] = (param, type(param))
            param.__class__ = PoptorchParameter
        self._user_model.__class__ = PoptorchModel

    def _unwrap_user_model(self) -> None:
        base, params = getattr(self, "_base_classes", (None, {}))
        if base is None:
            return
        for param, cls in params.values():
            param.__class__ = cls
        self._user_model.__class__ = base
        self._base_classes = (None, {})

    # -- what poptorch's executor exposes --------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        return self._user_model

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
        return getattr(self._user_model, name)

    def isCompiled(self) -> bool:  # noqa: N802 - poptorch's names
        return self._compiled is not None

    def isAttachedToDevice(self) -> bool:  # noqa: N802
        return self._compiled is not None and _device.is_attached(self)

    def attachToDevice(self) -> None:  # noqa: N802
        if self._compiled is None:
            raise Error(NO_EXECUTABLE_ERR)
        if _device.is_attached(self):
            raise Error("Device is already attached")
        if self._options.offline_target:
            raise AssertionError("Trying to attach to an offline device (ConnectionType.Never)")
        _device.attach(self, self._compiled["ipus"])
        self._on_device_attach()

    def detachFromDevice(self) -> None:  # noqa: N802
        if self._compiled is None:
            raise Error(NO_EXECUTABLE_ERR)
        if not _device.is_attached(self):
            raise Error("Device is not attached")
        if self._training:
            self.copyWeightsToHostIfNeeded()
        _device.detach(self)

    def _on_device_attach(self) -> None:
        """poptorch uploads the host's weights (and the optimizer) on every attach."""
        self.copyWeightsToDevice()

    def destroy(self) -> None:
        """Release the IPUs and the executable; a training model is unwrapped."""
        if self._compiled is not None:
            if self._training:
                self.copyWeightsToHostIfNeeded()
            _device.detach(self)
            self._compiled = None
            self._device = {}
        if self._training:
            self._unwrap_user_model()

    # -- weights: the device's copy and the host's --------------------------------------------
    def _named_tensors(self) -> dict[str, torch.Tensor]:
        _RUNNING[0] += 1  # listing the host tensors must not itself trigger a sync
        try:
            return {**dict(self._model.named_parameters()), **dict(self._model.named_buffers())}
        finally:
            _RUNNING[0] -= 1

    def copyWeightsToHostIfNeeded(self) -> bool:  # noqa: N802
        """Copy the device's weights back when a training call left the host's stale."""
        if self._dirty_host_weights and not _RUNNING[0]:
            self.copyWeightsToHost()
            return True
        return False

    @torch.no_grad()
    def copyWeightsToHost(self) -> None:  # noqa: N802
        """Overwrite the host model's parameters and buffers with the device's."""
        if self._compiled is None:
            raise Error(NO_EXECUTABLE_ERR)
        self._dirty_host_weights = False
        _RUNNING[0] += 1
        try:
            for name, tensor in self._named_tensors().items():
                if name in self._device:
                    tensor.data.copy_(self._device[name])
        finally:
            _RUNNING[0] -= 1
        self._host_weights_version += 1

    @torch.no_grad()
    def copyWeightsToDevice(self) -> None:  # noqa: N802
        """Overwrite the device's weights with the host model's (done on every attach)."""
        if self._compiled is None:
            raise Error(NO_EXECUTABLE_ERR)
        self._dirty_host_weights = False
        if not self._training:
            # poptorch reads the host parameters here, which syncs a model being trained.
            sync = getattr(self._user_model, "copyWeightsToHostIfNeeded", None)
            if callable(sync):
                sync()
        _RUNNING[0] += 1
        try:
            for name, tensor in self._named_tensors().items():
                host = tensor.data
                held = self._device.get(name)
                if held is None or held.shape != host.shape or held.dtype != host.dtype:
                    self._device[name] = host.detach().clone()
                else:
                    held.copy_(host)
        finally:
            _RUNNING[0] -= 1

    @contextmanager
    def _on_device(self) -> Any:
        """Run the model on the device's tensors: each host parameter and buffer borrows its
        device tensor for the duration of the call, then gets its own back."""
        _RUNNING[0] += 1
        swapped = []
        try:
            for name, tensor in self._named_tensors().items():
                if name in self._device:
                    swapped.append((tensor, tensor.data))
                    tensor.data = self._device[name]
            yield
        finally:
            for tensor, host in swapped:
                tensor.data = host
            _RUNNING[0] -= 1

    # -- the optimizer: the device's snapshot ----------------------------------------------
    def setOptimizer(self, optimizer: Any) -> None:  # noqa: N802
        """Send ``optimizer``'s hyper-parameters to the device (the only way they get there)."""
        if not self._training:
            raise Error("setOptimizer: an inference model has no optimizer")
        new = optim.snapshot(optimizer, self._options.Training.automatic_loss_scaling)
        if new["accum_type"] == torch.float16:
            # poptorch: fp16 accumulators use a running mean (set before compilation only).
            training = self._options.Training
            if self._compiled is None:
                self._options._unfreeze()
                training.setMeanAccumulationAndReplicationReductionStrategy(
                    MeanReductionStrategy.Running)
                self._options._freeze()
            elif training.mean_reduction_strategy != MeanReductionStrategy.Running:
                raise ValueError(
                    "Invalid optimizer: the new optimizer would require changing options."
                    "Training.meanAccumulationAndReplicationReductionStrategy to "
                    "poptorch.MeanReductionStrategy.Running but the executable is already "
                    "compiled.")
        self._optimizer = optimizer
        if self._device_optimizer is None:
            self._snapshot = new
            return
        if fault() == "skip-set-optimizer":
            return
        optim.check_replacement(self._device_optimizer.config, new)
        self._device_optimizer.replace(new)

    def _build_device_optimizer(self) -> None:
        names = {id(p): n for n, p in self._named_tensors().items()}
        groups = []
        for group in self._optimizer.param_groups:
            missing = [p for p in group["params"] if id(p) not in names]
            if missing:
                raise Error("the optimizer holds parameters that are not the wrapped model's")
            groups.append([names[id(p)] for p in group["params"]])
        self._device_optimizer = optim.DeviceOptimizer(self._snapshot, groups)

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
        params = [(n, list(p.shape), str(p.dtype)) for n, p in self._named_tensors().items()]
        raw = json.dumps({
            "poptorch": VERSION, "model": type(self._model).__qualname__, "params": params,
            "blocks": blocks, "options": self._options.signature(self._training),
            "inputs": signature,
            "optimizer": self._snapshot["type"] if self._training else None,
        }, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def _as_kwargs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Positional inputs named after the model's ``forward`` (poptorch's ArgsParser)."""
        if not args:
            return kwargs
        names = [n for n, p in inspect.signature(type(self._model).forward).parameters.items()
                 if n != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(args) > len(names):
            raise TypeError(f"{len(args)} positional inputs given, forward() takes "
                            f"{len(names)}")
        named = dict(zip(names, args, strict=False))
        twice = set(named) & set(kwargs)
        if twice:
            raise TypeError(f"input {sorted(twice)[0]!r} given positionally and by keyword")
        return {**named, **kwargs}

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Compile for these inputs (a combined batch), or load the cached executable.

        A second call is ignored, as in poptorch ("the executable is already compiled").
        """
        if self._compiled is not None:
            _log.warning("Call to compile() ignored: the executable is already compiled")
            return
        self._compile(self._as_kwargs(args, kwargs))

    def _compile(self, kwargs: dict[str, Any]) -> None:
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
            ops, stages = self._capture(kwargs, signature)
            entry = {"key": key, "ops": ops, "forward_stages": stages}
            self._check_pipeline(stages)
            self.cache_hit = False
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(entry), encoding="utf-8")
                tmp.replace(path)
        self._check_pipeline(entry["forward_stages"])
        ipus = self._options.replication_factor * self._ipus_per_replica()
        self._compiled = {"key": key, "signature": signature, "ops": len(entry["ops"]),
                          "ipus": ipus, "forward_stages": entry["forward_stages"]}
        if self._training:
            self._build_device_optimizer()
        self.compile_seconds = time.perf_counter() - started
        if not self._options.offline_target:
            _device.attach(self, ipus)
            self._on_device_attach()
        else:
            self.copyWeightsToDevice()

    def _check_pipeline(self, forward_stages: int) -> None:
        """poptorch's pipeline-depth rule (``popart_compiler/source/Compiler.cpp``)."""
        if not _pipelined(self._options):
            return
        if self._training:
            stages = forward_stages * 2 - 1
            if self._options.Training.gradient_accumulation < stages:
                raise Error(
                    "poptorch.Options().Training.gradientAccumulation must be greater than or "
                    f"equal to the number of pipeline stages ({stages}) when using "
                    f"poptorch.PipelinedExecution. Please note that a model with "
                    f"{forward_stages} pipeline stages in PopTorch will have an additional "
                    f"{forward_stages - 1} stages when training.")
        elif self._options.device_iterations < forward_stages:
            raise Error(
                "poptorch.Options().deviceIterations must be greater than or equal to the "
                f"number of pipeline stages ({forward_stages}) when using "
                "PopTorch.PipelinedExecution.")

    def _capture(self, kwargs: dict[str, Any], signature: list[Any]) -> tuple[list[str], int]:
        """Trace one micro batch into an op list (its autograd graph, and backward when
        training) and count the forward pipeline stages: one more each time the IPU changes
        along the execution order (poptorch's ``num_ipu_switches + 1``).

        Like poptorch's tracer this runs the model once on the host; gradients it leaves are
        cleared, so compiling never changes what training computes.
        """
        names = [name for name, _, _ in signature]
        micro = {n: kwargs[n][: signature[i][1][0]] for i, n in enumerate(names)}
        ipus_seen = [0]

        def enter(module: torch.nn.Module, _inputs: Any) -> None:
            block = block_of(module)
            if block is not None and block[1] is not None:
                ipus_seen.append(block[1])

        hooks = [m.register_forward_pre_hook(enter) for m in self._model.modules()
                 if block_of(m) is not None]
        try:
            with self._no_sync():
                self._model.train(self._training)
                with torch.enable_grad():
                    output = self._forward(micro)
                    roots = [self._loss(output)] if self._training else _tensors(output)
                    ops = _graph_ops(roots)
                    if self._training:
                        roots[0].backward()
                self._model.zero_grad(set_to_none=True)
        finally:
            for hook in hooks:
                hook.remove()
        switches = sum(1 for a, b in zip(ipus_seen, ipus_seen[1:], strict=False) if a != b)
        return ops, switches + 1

    @contextmanager
    def _no_sync(self) -> Any:
        """Tracing reads the host model: no implicit host-weight sync meanwhile."""
        _RUNNING[0] += 1
        try:
            yield
        finally:
            _RUNNING[0] -= 1

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
        if self._options.offline_target:
            raise AssertionError("Trying to run a model on an offline device "
                                 "(ConnectionType.Never): use model.compile(inputs) instead "
                                 "of model(inputs)")
        kwargs = self._as_kwargs(args, kwargs)
        if self._compiled is None:
            self._compile(kwargs)
        if not _device.is_attached(self):
            self.attachToDevice()
        if not self._training:
            # poptorch: an inference model of a model being trained on other IPUs picks up
            # the trained weights once they reached the host.
            sync = getattr(self._user_model, "copyWeightsToHostIfNeeded", None)
            if callable(sync):
                sync()
                version = self._user_model._host_weights_version
                if version is not None and version != self._host_weights_version:
                    self.copyWeightsToDevice()
                    self._host_weights_version = version
        signature = _signature(kwargs, self._micro_batches())
        if signature != self._compiled["signature"]:
            raise RuntimeError(
                f"{len(self._compiled['signature'])} arguments used to compile the model and "
                f"{len(signature)} provided, or shapes differ: compiled for "
                f"{self._compiled['signature']}, called with {signature}")
        with self._on_device():
            output = self._train(kwargs) if self._training else self._infer(kwargs)
        if self._training:
            self._dirty_host_weights = True
        return output

    def _chunks(self, kwargs: dict[str, Any], index: int) -> dict[str, Any]:
        size = self._compiled["signature"][0][1][0]
        return {k: v[index * size:(index + 1) * size] for k, v in kwargs.items()
                if isinstance(v, torch.Tensor)}

    def _train(self, kwargs: dict[str, Any]) -> Any:
        opts = self._options
        device_opt = self._device_optimizer
        config = device_opt.config
        loss_scaling = config["loss_scaling"][0]
        accum_type = config["accum_type"]
        running = (opts.Training.mean_reduction_strategy == MeanReductionStrategy.Running
                   and opts.Training.reduction == ReductionType.Mean)
        replicas, accumulation = opts.replication_factor, opts.Training.gradient_accumulation
        per_iteration = replicas * accumulation
        mean = opts.Training.reduction == ReductionType.Mean
        injected = fault()
        device_opt.stochastic_rounding = opts.Precision.stochastic_rounding
        names = {id(t): n for n, t in self._named_tensors().items()}
        params = [p for p in self._model.parameters() if p.requires_grad]
        outputs: list[list[Any]] = []  # [iteration * accumulation + step][replica]
        self._model.train()
        for iteration in range(opts.device_iterations):
            accumulated: dict[str, torch.Tensor] = {}
            count = 0
            for step in range(accumulation):
                row = []
                for replica in range(replicas):
                    index = iteration * per_iteration + step * replicas + replica
                    output = self._forward(self._chunks(kwargs, index))
                    (self._loss(output) * loss_scaling).backward()
                    row.append(_detach(output))
                    count += 1
                    if injected == "no-accumulation":
                        accumulated, count = {}, 1
                    _accumulate(accumulated, params, names, accum_type, running, count)
                outputs.append(row)
            divisor = count if (mean and not running) else 1
            grads = {n: g.float() / (loss_scaling * divisor) for n, g in accumulated.items()}
            device_opt.step(self._device, grads)
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


@torch.no_grad()
def _accumulate(accumulated: dict[str, torch.Tensor], params: list[torch.Tensor],
                names: dict[int, str], accum_type: torch.dtype, running: bool,
                count: int) -> None:
    """Move each parameter's gradient into its accumulator of ``accum_type``: a running mean
    (``MeanReductionStrategy.Running``) or a sum (``Post``, divided after the last)."""
    for param in params:
        grad = param.grad
        if grad is None:
            continue
        name = names[id(param)]
        grad = grad.to(accum_type)
        held = accumulated.get(name)
        if held is None:
            accumulated[name] = grad.clone()
        elif running:
            held.add_((grad - held) / count)
        else:
            held.add_(grad)
        param.grad = None


def _pipelined(options: Options) -> bool:
    strategy = options.execution_strategy
    return isinstance(strategy, PipelinedExecution) and not isinstance(strategy,
                                                                      ShardedExecution)


def trainingModel(model: torch.nn.Module, options: Options | None = None,  # noqa: N802
                  optimizer: Any = None) -> PoplarExecutor:
    """Wrap ``model`` for training: one call runs accumulation and the optimizer step."""
    if isinstance(model, PoplarExecutor):
        model = model.model
    if is_wrapped(model):
        raise RuntimeError("Model has already been wrapped in 'poptorch.trainingModel'. Call "
                           "model.destroy() on the model to unwrap before wrapping again.")
    return PoplarExecutor(copy.copy(model), options, training=True, optimizer=optimizer,
                          user_model=model)


def inferenceModel(model: torch.nn.Module, options: Options | None = None) -> PoplarExecutor:  # noqa: N802
    """Wrap ``model`` for inference (a shallow copy, sharing the parameters)."""
    if isinstance(model, PoplarExecutor):
        model = model.model
    return PoplarExecutor(copy.copy(model), options, training=False)
