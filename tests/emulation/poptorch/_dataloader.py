"""``poptorch.DataLoader``: one host batch feeds one call of the executable.

A call consumes micro batch x device iterations x replication factor x gradient accumulation
samples (the *combined* batch), so that is this loader's batch size. An incomplete last batch
cannot feed a static-shape executable: it is dropped, as poptorch does by default. With
``drop_last=False`` poptorch warns and hands out the short batch, which the executable then
refuses (its shapes are fixed at compile time); the emulation does the same.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from .enums import DataLoaderMode
from .options import Options

log = logging.getLogger("poptorch.emulation")


def combined_batch_size(options: Options, batch_size: int) -> int:
    """Samples one call of an executable compiled with ``options`` consumes."""
    return (batch_size * options.device_iterations * options.replication_factor
            * options.Training.gradient_accumulation)


class DataLoader(torch.utils.data.DataLoader):
    """A torch DataLoader whose batch is the combined batch of ``options``."""

    def __init__(self, options: Options, dataset: Any, batch_size: int = 1,
                 shuffle: bool = False, num_workers: int = 0, drop_last: bool = True,
                 persistent_workers: bool | None = None,
                 auto_distributed_partitioning: bool = True,
                 mode: DataLoaderMode = DataLoaderMode.Sync, async_options: Any = None,
                 rebatched_worker_size: int | None = None, **kwargs: Any) -> None:
        if not isinstance(options, Options):
            raise TypeError("poptorch.DataLoader needs a poptorch.Options as first argument")
        self.options = options
        self.micro_batch_size = int(batch_size)
        self.mode = DataLoaderMode(mode)
        combined = combined_batch_size(options, int(batch_size))
        self._combined_batch_size = combined
        if not drop_last and hasattr(dataset, "__len__") and len(dataset) % combined:
            log.warning("The number of elements in the dataset (%d) is not divisible by the "
                        "number of elements processed per step (%d) and drop_last=False",
                        len(dataset), combined)
        # Async modes load in a worker process on real hardware; the emulation loads in this
        # process (same batches, same order), so workers are never started.
        super().__init__(dataset, batch_size=combined, shuffle=shuffle, num_workers=0,
                         drop_last=drop_last, **kwargs)

    @property
    def combinedBatchSize(self) -> int:  # noqa: N802 - poptorch's name
        """Samples per call of the executable."""
        return self._combined_batch_size
