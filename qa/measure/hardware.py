"""Hardware fingerprints: which machine a timing was measured on, and whether two are the same.

A timing baseline belongs to the hardware it was measured on. Each backend describes its
hardware as a flat dict (``Backend.fingerprint``); two fingerprints match when every identity
field that both carry is equal. Identity fields are what changes the speed of the same code:
the CPU (vendor model string, family/model/stepping and a digest of its feature flags, so two
"AMD EPYC" of different generations differ), core count and intra-op threads; the GPU name and
count; the IPU pod; the torch build (a ``+cpu`` wheel and a CUDA wheel differ on the same CPU);
and whether the hardware is emulated. Descriptive fields (kernel, memory, and ``description``:
the backend's one line for reports, ``Backend.describe``, written when the entry runs) are
recorded but not compared.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

#: Fields compared by ``same_hardware``; anything else in a fingerprint is description only.
IDENTITY_FIELDS = ("kind", "cpu", "cpu_id", "cpu_flags", "cores", "threads", "gpu", "gpus",
                   "pod", "ipus", "torch_build", "emulated")


def cpu_info() -> dict[str, Any]:
    """The CPU as /proc/cpuinfo tells it: name, family/model/stepping, a digest of its flags."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "stepping", "flags", "vendor_id") \
                    and key not in fields:
                fields[key] = value.strip()
    except OSError:
        pass
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return {
        "cpu": fields.get("model name") or platform.processor() or platform.machine(),
        "cpu_id": "/".join(fields.get(k, "?") for k in ("vendor_id", "cpu family", "model",
                                                       "stepping")),
        "cpu_flags": hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else None,
        "cores": os.cpu_count(),
    }


def torch_build() -> str:
    """``cpu`` for a CPU-only wheel, ``cuda<version>`` for a CUDA wheel (even when run on CPU)."""
    import torch

    if torch.version.cuda:
        return f"cuda{torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"rocm{torch.version.hip}"
    return "cpu"


def same_hardware(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two fingerprints describe the same hardware (every shared identity field equal).

    A missing fingerprint never matches: a timing without provenance cannot be judged.
    """
    if not a or not b:
        return False
    shared = [f for f in IDENTITY_FIELDS if f in a or f in b]
    return all(a.get(f) == b.get(f) for f in shared)


def differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """``field: a -> b`` for each identity field that differs (for the report)."""
    a, b = a or {}, b or {}
    return [f"{f}: {a.get(f)} -> {b.get(f)}" for f in IDENTITY_FIELDS
            if (f in a or f in b) and a.get(f) != b.get(f)]


def identity_line(fingerprint: dict[str, Any] | None) -> str:
    """The identity fields a fingerprint carries, in one line: ``npu: cores 8, pod rack2``.

    Fields that are absent or None are left out (never "None"); a true ``emulated`` reads
    ``emulated``. The generic description (``Backend.describe``'s default), and how a
    fingerprint recorded without its backend's ``description`` reads.
    """
    if not fingerprint:
        return "unknown hardware"
    parts = []
    for name in IDENTITY_FIELDS:
        value = fingerprint.get(name)
        if name == "kind" or value in (None, "", False):
            continue
        parts.append(name if value is True else f"{name} {value}")
    kind = fingerprint.get("kind")
    line = ", ".join(parts) or "no identity fields"
    return f"{kind}: {line}" if kind not in (None, "") else line


#: Fingerprint kinds of a host's own CPU or CUDA GPUs (``cpu_info`` and torch's device query).
HOST_KINDS = ("cpu", "cuda")


def host_line(fingerprint: dict[str, Any]) -> str:
    """A host CPU's or GPUs' line: ``2× NVIDIA H100, torch cu121`` or ``AMD EPYC [..] 2 cores,
    2 threads, torch cpu`` (the torch backend's description, and how a host fingerprint recorded
    before descriptions were stored reads)."""
    fp = fingerprint
    if fp.get("gpu"):
        parts = [f"{fp.get('gpus', 1)}× {fp['gpu']}"]
    else:
        parts = [f"{fp.get('cpu')} [{fp.get('cpu_id')}] {fp.get('cores')} cores, "
                 f"{fp.get('threads')} threads"]
    if fp.get("torch_build"):
        parts.append(f"torch {fp['torch_build']}")
    return ", ".join(parts)


def describe(fingerprint: dict[str, Any] | None) -> str:
    """One short line for a report: the ``description`` its backend wrote when the entry ran
    (``Backend.describe``); for a fingerprint recorded without one, the host's line when it is
    a host CPU/GPU with its name (``host_line``), else its identity fields (``identity_line``)."""
    if not fingerprint:
        return "unknown hardware"
    if fingerprint.get("description"):
        return str(fingerprint["description"])
    if fingerprint.get("kind") in HOST_KINDS and (fingerprint.get("cpu") or
                                                  fingerprint.get("gpu")):
        return host_line(fingerprint)
    return identity_line(fingerprint)
