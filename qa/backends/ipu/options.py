"""The ipu backend's own settings: ``[ipu]`` in a profile, ``--set ipu.KEY=VALUE``.

Imported by the config layer (``qa.config.sections``) whenever a config is built, so it imports
nothing but dataclasses: no poptorch, no optimum-graphcore.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IPUOptions:
    """How the ipu backend builds one entry's IPU configuration."""

    ipu_config: str | None = field(default=None, metadata={
        "help": "IPU config JSON (name shipped in qa/backends/ipu/configs or path; default: the "
                "model's own)"})
    fp32: bool = field(default=False, metadata={
        "help": "fp32 weights and compute (optimum-graphcore's fp32 option); off: fp16, "
                "optimum-graphcore's default on a pod"})
