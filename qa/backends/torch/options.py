"""The torch backend's own settings: ``[torch]`` in a profile, ``--set torch.KEY=VALUE``.

Imported by the config layer (``qa.config.sections``) whenever a config is built, so it imports
nothing but the config's declarations: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.config.schema import COUNT
from qa.errors import QABenchError


@dataclass(frozen=True)
class TorchOptions:
    """Where and how the torch backend runs one entry."""

    device: str = field(default="auto", metadata={
        "choices": ("cpu", "cuda", "auto"), "help": "'cpu', 'cuda' or 'auto'"})
    replicas: int = field(default=1, metadata={
        **COUNT, "help": "data-parallel processes per node under torchrun"})
    nodes: int = field(default=1, metadata={
        **COUNT, "help": "hosts that train one entry together under torchrun; world "
                         "size = nodes × replicas"})
    node_rank: int = field(default=0, metadata={
        "min": 0, "help": "this host's rank among the nodes (0 .. nodes − 1)"})
    rdzv_endpoint: str | None = field(default=None, metadata={
        "help": "HOST:PORT of torchrun's c10d rendezvous when nodes > 1 (the same on every "
                "node)"})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (CUDA)"})

    @property
    def world_size(self) -> int:
        """Processes that train one entry together: nodes × replicas."""
        return self.nodes * self.replicas

    def check(self) -> None:
        """The rules that join two of these settings.

        Raises:
            QABenchError: a node rank outside the nodes, or several nodes without a rendezvous.
        """
        if self.node_rank >= self.nodes:
            raise QABenchError(f"torch.node_rank = {self.node_rank}: must be in 0 .. "
                               f"{self.nodes - 1} for torch.nodes = {self.nodes}")
        if self.nodes > 1 and not self.rdzv_endpoint:
            raise QABenchError(f"torch.nodes = {self.nodes}: nodes > 1 needs "
                               "torch.rdzv_endpoint (HOST:PORT, the same on every node)")
