"""Which devices the torch backend runs on: names, resolution, and its place under torchrun."""

from __future__ import annotations

import os

from qa.backends.torch.lazy import lazy_torch
from qa.errors import QABenchError

torch = lazy_torch()  # imported on first use (qa.backends.torch.lazy)

#: Device names a profile's ``pods`` list may hold for the torch backend; the first is the default.
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; under torchrun each rank takes its local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise QABenchError("torch.device is 'cuda' but no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name != "cpu":
        raise QABenchError(f"unknown device {name!r} (choose from: auto, cpu, cuda)")
    return torch.device("cpu")


def auto_device() -> str:
    """'cuda' when a CUDA device is present, else 'cpu' (what ``auto`` means here)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def dist_info() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> None:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA) when launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        if device.type == "cuda":
            torch.cuda.set_device(device)
