"""An emulation of poptorch for tests: the subset optimum-graphcore 0.6-0.7 calls, run on the CPU.

It stands in for the IPU hardware and the Poplar SDK, never for qa-bench's code: qa-bench's IPU
backend and optimum-graphcore's own trainer run unchanged on top of it. It is not installed
with qa-bench; the ``ipu-emulated`` tox env puts ``tests/emulation`` on ``PYTHONPATH``.

Off unless ``QA_BENCH_IPU_EMULATION`` names the emulated machine's IPU count: then
``ipuHardwareIsAvailable()`` is true and ``ipuHardwareVersion()`` is 2 (Mk2). Anything run on it
is emulated, and qa-bench marks it so (``EMULATED`` below is what it checks).

Names optimum-graphcore uses that the BERT question-answering path never reaches (``cond``,
``dynamic_slice``, ``custom_op``, ...) exist and raise ``NotImplementedError`` when called.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from . import _impl, enums, optim  # noqa: F401 - public submodules, as in poptorch
from ._dataloader import DataLoader
from ._device import ENV, HARDWARE_VERSION, machine_ipus
from ._poplar_executor import (
    FAULT_ENV,
    FAULTS,
    VERSION,
    Error,
    PoplarExecutor,
    inferenceModel,
    mark_loss,
    trainingModel,
)
from .enums import (
    AutoStage,
    DataLoaderMode,
    MatMulSerializationMode,
    MeanReductionStrategy,
    OutputMode,
    ReductionType,
    SharingStrategy,
)
from .optim import AdamW
from .options import Options, PipelinedExecution, ShardedExecution, TensorLocationSettings

__version__ = VERSION
#: Checked by qa-bench: results produced on this module are emulated, never hardware numbers.
EMULATED = True

__all__ = [
    "AdamW", "Attribute", "AutoStage", "BeginBlock", "DataLoader", "DataLoaderMode", "EMULATED",
    "Error", "FAULTS", "FAULT_ENV", "MatMulSerializationMode", "MeanReductionStrategy",
    "Options", "OutputMode", "PipelinedExecution", "PoplarExecutor",
    "ReductionType", "ShardedExecution", "SharingStrategy", "TensorLocationSettings",
    "identity_loss", "inferenceModel", "ipuHardwareIsAvailable", "ipuHardwareVersion",
    "isRunningOnIpu", "recomputationCheckpoint", "removeBlocks", "serializedMatMul",
    "setLogLevel", "trainingModel",
]

_log = logging.getLogger("poptorch.emulation")


def ipuHardwareIsAvailable(num_ipus: int = 1) -> bool:  # noqa: N802 - poptorch's names
    """True when the emulation is enabled with at least ``num_ipus`` IPUs."""
    return machine_ipus() >= max(1, num_ipus)


def ipuHardwareVersion() -> int:  # noqa: N802
    """2 (Mk2) under the emulation, -1 when it is off (no IPU)."""
    return HARDWARE_VERSION if machine_ipus() else -1


def setLogLevel(level: Any) -> None:  # noqa: N802
    """Set the emulation's log level (poptorch's names: "ERR", "WARN", "INFO", ...)."""
    names = {"ERR": logging.ERROR, "WARN": logging.WARNING, "INFO": logging.INFO,
             "DEBUG": logging.DEBUG, "TRACE": logging.DEBUG, "OFF": logging.CRITICAL}
    _log.setLevel(names.get(str(level).upper(), logging.INFO) if isinstance(level, str)
                  else int(level))


def isRunningOnIpu() -> bool:  # noqa: N802
    """False: the emulated model runs its CPU code path (never custom IPU ops)."""
    return False


# -- pipeline annotations -------------------------------------------------------------------

def BeginBlock(module: torch.nn.Module, user_id: str | None = None,  # noqa: N802
               ipu_id: int | None = None) -> torch.nn.Module:
    """Start a pipeline stage at ``module`` on IPU ``ipu_id``; returns the module itself."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError("BeginBlock wraps a torch.nn.Module")
    if ipu_id is not None and int(ipu_id) < 0:
        raise ValueError(f"ipu_id must be >= 0, got {ipu_id}")
    module._emulated_block = (user_id, None if ipu_id is None else int(ipu_id))
    return module


def removeBlocks(module: torch.nn.Module) -> None:  # noqa: N802
    """Undo ``BeginBlock`` on ``module``."""
    if "_emulated_block" in module.__dict__:
        del module.__dict__["_emulated_block"]


def recomputationCheckpoint(*tensors: torch.Tensor) -> Any:  # noqa: N802
    """Mark activations to keep instead of recompute: on the CPU, the tensors themselves."""
    return tensors[0] if len(tensors) == 1 else tensors


class Attribute:
    """Attach attributes to the ops built inside (outlining hints): no effect on the CPU.

    Re-enterable, as optimum-graphcore enters one instance from a forward pre-hook on every call.
    """

    def __init__(self, **attributes: Any) -> None:
        self.attributes = attributes

    def __enter__(self) -> Attribute:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def identity_loss(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mark ``x`` as the loss; ``reduction`` is "sum", "mean" or "none"."""
    if reduction == "sum":
        loss = x.sum()
    elif reduction == "mean":
        loss = x.mean()
    elif reduction == "none":
        loss = x
    else:
        raise ValueError(f"identity_loss reduction must be sum, mean or none, got {reduction!r}")
    mark_loss(loss)
    return loss


def serializedMatMul(lhs: torch.Tensor, rhs: torch.Tensor,  # noqa: N802
                     mode: MatMulSerializationMode, factor: int = 0,
                     keep_precision: bool = False) -> torch.Tensor:
    """``lhs @ rhs`` computed in ``factor`` slices along the dimension ``mode`` names."""
    if mode == MatMulSerializationMode.Disabled or factor <= 1:
        return lhs @ rhs
    dims = {MatMulSerializationMode.InputChannels: (lhs, -2),
            MatMulSerializationMode.ReducingDim: (lhs, -1),
            MatMulSerializationMode.OutputChannels: (rhs, -1)}
    tensor, dim = dims[mode]
    if tensor.shape[dim] % factor:
        raise RuntimeError(f"serializedMatMul: dimension {tensor.shape[dim]} is not divisible "
                           f"by the serialization factor {factor}")
    if mode == MatMulSerializationMode.InputChannels:
        return torch.cat([part @ rhs for part in lhs.chunk(factor, dim=-2)], dim=-2)
    if mode == MatMulSerializationMode.OutputChannels:
        return torch.cat([lhs @ part for part in rhs.chunk(factor, dim=-1)], dim=-1)
    pairs = zip(lhs.chunk(factor, dim=-1), rhs.chunk(factor, dim=-2), strict=True)
    return torch.stack([a @ b for a, b in pairs]).sum(0)


# -- used by optimum-graphcore, but not on the BERT question-answering path -------------------

def _not_emulated(name: str) -> Any:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"poptorch.{name} is not emulated (the emulation covers the "
                                  "question-answering fine-tuning path)")

    missing.__name__ = name
    return missing


cond = _not_emulated("cond")
dynamic_slice = _not_emulated("dynamic_slice")
dynamic_update = _not_emulated("dynamic_update")
custom_op = _not_emulated("custom_op")
ipu_print_tensor = _not_emulated("ipu_print_tensor")
ENV_VAR = ENV
