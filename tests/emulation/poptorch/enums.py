"""The poptorch enums optimum-graphcore names (values as in poptorch; only identity matters)."""

from __future__ import annotations

import enum


class OutputMode(enum.IntEnum):
    """Which outputs a call returns to the host."""

    Final = 0  # the last micro batch of the last iteration, per replica
    EveryN = 1
    All = 2  # every micro batch
    Sum = 3  # the sum over every micro batch, per replica
    Default = 4  # All for inference, Final for training


class DataLoaderMode(enum.IntEnum):
    """How the DataLoader feeds the device (the emulation always loads synchronously)."""

    Sync = 0
    Async = 1
    AsyncRebatched = 2


class ReductionType(enum.IntEnum):
    """How gradients are reduced over accumulation steps and replicas."""

    Sum = 0
    Mean = 1
    NoReduction = 2


class MatMulSerializationMode(enum.Enum):
    """Which dimension ``serializedMatMul`` splits."""

    InputChannels = "input_channels"
    ReducingDim = "reducing_dim"
    OutputChannels = "output_channels"
    Disabled = "none"


class AutoStage(enum.IntEnum):
    """How blocks without a stage get one."""

    SameAsIpu = 0
    AutoIncrement = 1


class SharingStrategy(enum.IntEnum):
    """Data sharing between the DataLoader's worker and the host."""

    SharedMemory = 0
    FileSystem = 1
    Fork = 2
    ForkServer = 3


class MeanReductionStrategy(enum.IntEnum):
    """How a Mean reduction is computed: ``Running`` (a running mean, selected by poptorch for
    fp16 accumulators), ``Post`` (sum, then divide), ``PostAndLoss`` (legacy)."""

    Running = 0
    Post = 1
    PostAndLoss = 2
