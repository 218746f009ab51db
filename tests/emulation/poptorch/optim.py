"""``poptorch.optim``: optimizers run by the executable, with poptorch's precision semantics.

The executable, not the host, runs the optimizer step: ``step()`` here is called by the emulated
``trainingModel`` once per optimizer step, after the gradients of every micro batch of every
replica were accumulated. What matters for the numbers, emulated:

* ``loss_scaling``: the loss is multiplied by it before the backward pass (so fp16 gradients do
  not underflow) and the gradients are divided by it here;
* gradients accumulate in the parameters' dtype (``accum_type``: fp16 for an fp16 model) and
  are averaged over accumulation steps and replicas (``ReductionType.Mean``);
* AdamW with poptorch's ``bias_correction`` flag and momentum kept in
  ``first_order_momentum_accum_type`` / ``second_order_momentum_accum_type``;
* the update is computed in fp32 and written to fp16 weights with stochastic rounding when the
  executable's options enable it (the IPU rounds that way; round-to-nearest would drop every
  update smaller than half an fp16 ulp of the weight).

SGD, Adam, RMSprop and LAMB exist so that optimum-graphcore imports and converts them; only
AdamW (optimum-graphcore's default) steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class VariableAttributes:
    """Which optimizer attributes may change between steps (recorded only)."""

    def __init__(self) -> None:
        self.constant: set[str] = set()

    def markAsConstant(self, name: str) -> None:  # noqa: N802 - poptorch's name
        self.constant.add(name)

    def markAsVariable(self, name: str) -> None:  # noqa: N802
        self.constant.discard(name)

    def isConstant(self, name: str) -> bool:  # noqa: N802
        return name in self.constant


class Optimizer(torch.optim.Optimizer):
    """Base of the emulated poptorch optimizers."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any],
                 loss_scaling: float | None = None, accum_type: torch.dtype | None = None,
                 first_order_momentum_accum_type: torch.dtype | None = None,
                 second_order_momentum_accum_type: torch.dtype | None = None,
                 max_grad_norm: float | None = None, **ignored: Any) -> None:
        super().__init__(params, defaults)
        self.loss_scaling = float(loss_scaling) if loss_scaling is not None else 1.0
        self.accum_type = accum_type
        self.first_order_type = first_order_momentum_accum_type or torch.float32
        self.second_order_type = second_order_momentum_accum_type or torch.float32
        self.max_grad_norm = max_grad_norm
        self.variable_attrs = VariableAttributes()
        self.stochastic_rounding = False  # set by the executable from its options
        self.gradient_divisor = 1.0  # accumulation steps x replicas under ReductionType.Mean

    def unscaled_gradients(self) -> dict[torch.Tensor, torch.Tensor]:
        """fp32 gradients, loss scaling and the Mean reduction undone, clipped if asked."""
        grads = {}
        scale = self.loss_scaling * self.gradient_divisor
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    grads[p] = p.grad.detach().float() / scale
        if self.max_grad_norm is not None and grads:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g)
                                                         for g in grads.values()]))
            if math.isfinite(norm.item()) and norm.item() > self.max_grad_norm:
                for g in grads.values():
                    g.mul_(self.max_grad_norm / norm.item())
        return grads

    def write(self, param: torch.Tensor, value: torch.Tensor) -> None:
        """Store an fp32 result into ``param`` in its own dtype (stochastically rounded)."""
        if param.dtype == torch.float16 and self.stochastic_rounding:
            value = stochastic_round_to_half(value)
        param.data.copy_(value.to(param.dtype))

    def step(self, closure: Any = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} is not emulated (only AdamW steps)")


def stochastic_round_to_half(value: torch.Tensor) -> torch.Tensor:
    """Round fp32 values to fp16 neighbours with probability proportional to their distance."""
    nearest = value.to(torch.float16)
    error = value - nearest.float()
    toward = torch.where(error >= 0, torch.full_like(nearest, math.inf),
                         torch.full_like(nearest, -math.inf))
    other = torch.nextafter(nearest, toward).float()
    gap = (other - nearest.float()).abs()
    probability = torch.where(gap > 0, error.abs() / gap, torch.zeros_like(gap))
    take_other = torch.rand_like(probability) < probability
    return torch.where(take_other, other, nearest.float()).to(torch.float16)


class AdamW(Optimizer):
    """AdamW (decoupled weight decay), poptorch's signature."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False,
                 bias_correction: bool = True, **poptorch_kwargs: Any) -> None:
        if amsgrad:
            raise ValueError("poptorch's AdamW has no amsgrad")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay}, **poptorch_kwargs)
        self.bias_correction = bias_correction

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        grads = self.unscaled_gradients()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p not in grads:
                    continue
                grad = grads[p]
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p, dtype=self.first_order_type)
                    state["v"] = torch.zeros_like(p, dtype=self.second_order_type)
                state["step"] += 1
                m = state["m"].float().mul_(beta1).add_(grad, alpha=1 - beta1)
                v = state["v"].float().mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                state["m"].copy_(m.to(self.first_order_type))
                state["v"].copy_(v.to(self.second_order_type))
                if self.bias_correction:
                    m = m / (1 - beta1 ** state["step"])
                    v = v / (1 - beta2 ** state["step"])
                weights = p.detach().float()
                update = m / (v.sqrt() + group["eps"]) + group["weight_decay"] * weights
                self.write(p, weights - group["lr"] * update)


class _NotStepped(Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-3, **kwargs: Any) -> None:
        known = {"loss_scaling", "accum_type", "first_order_momentum_accum_type",
                 "second_order_momentum_accum_type", "max_grad_norm"}
        super().__init__(params, {"lr": lr}, **{k: v for k, v in kwargs.items() if k in known})


class SGD(_NotStepped):
    """Exists for optimum-graphcore's torch -> poptorch optimizer table."""


class Adam(_NotStepped):
    """Exists for optimum-graphcore's torch -> poptorch optimizer table."""


class RMSprop(_NotStepped):
    """Exists for optimum-graphcore's torch -> poptorch optimizer table."""


class LAMB(_NotStepped):
    """Exists for optimum-graphcore's ``--lamb`` option."""
