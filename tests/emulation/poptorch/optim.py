"""``poptorch.optim`` and the optimizer the emulated device runs.

As in poptorch, the Python optimizer never steps anything: ``trainingModel``/``setOptimizer``
convert it into a snapshot of hyper-parameters (poptorch's ``convertOptimizerToDict``: type,
per-group ``lr``/``weight_decay``/... each with a *constant* flag, and the global attributes
``loss_scaling``, accumulation types, ``max_grad_norm``) and the device keeps that snapshot and
its own optimizer state until the next ``setOptimizer``. A learning rate changed in Python
without ``setOptimizer`` never reaches the device.

Accepted, as poptorch accepts them: ``torch.optim.SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and
the ``poptorch.optim`` classes (which subclass them, plus ``LAMB``). The device steps all of
them with popart's update rules; what matters for the numbers:

* ``loss_scaling``: the loss is multiplied by it before the backward pass and the gradients are
  divided by it before the update;
* gradients accumulate over micro batches and replicas in ``accum_type`` (fp16 for an fp16
  model under optimum-graphcore), as a running mean when that is fp16
  (``MeanReductionStrategy.Running``, which poptorch selects for fp16 accumulators) or summed
  then divided (``Post``);
* momenta kept in ``first_order_momentum_accum_type`` / ``second_order_momentum_accum_type``
  (``velocity_accum_type`` for SGD);
* the update computed in fp32 and written to fp16 weights with stochastic rounding when the
  executable's options enable it.

Replacing the device's optimizer after compilation follows popart's ``validReplacement``: the
same optimizer type, the same constant/variable split, and constants unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class VariableAttributes:
    """Which attributes may change between ``setOptimizer`` calls (poptorch's rule: the ones
    given explicitly to the constructor are variable, the defaults constant)."""

    def __init__(self, variable: list[str], allowed: list[str]) -> None:
        self._variable = list(variable)
        self._allowed = list(allowed)

    def isConstant(self, attr: str) -> bool:  # noqa: N802 - poptorch's names
        return attr not in self._variable

    def markAsConstant(self, attr: str) -> None:  # noqa: N802
        if attr not in self._allowed:
            raise AssertionError(f"Unknown attribute {attr}, allowed values: {self._allowed}")
        self._variable = [a for a in self._variable if a != attr]

    def markAsVariable(self, attr: str) -> None:  # noqa: N802
        if attr not in self._allowed:
            raise AssertionError(f"Unknown attribute {attr}, allowed values: {self._allowed}")
        self._variable.append(attr)


class Optimizer:
    """Mixin of the ``poptorch.optim`` classes: the IPU-state bookkeeping poptorch keeps."""

    def _poptorch_init(self, given: dict[str, Any], child_vars: list[str], **attrs: Any) -> None:
        self._state_dict = {"ipu_state": None, "ipu_param": None}
        self.ipu_state_is_dirty = False
        self.host_state_is_dirty = False
        for name, value in attrs.items():
            setattr(self, name, value)
        variable = [k for k, v in given.items() if v is not None]
        self.variable_attrs = VariableAttributes(variable, list(self.defaults) + child_vars)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """torch's state (so that LR schedulers work) plus the IPU state keys."""
        torch_state = {k: v for k, v in state.items() if k not in ("ipu_state", "ipu_param")}
        torch.optim.Optimizer.load_state_dict(self, torch_state)
        self._state_dict = {"ipu_state": state.get("ipu_state"),
                            "ipu_param": state.get("ipu_param")}


def _given(local: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in local.items() if k not in ("self", "params", "__class__") + drop}


def _parent(given: dict[str, Any], child_only: list[str]) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None and k not in child_only}


_ACCUM = ("accum_type", "first_order_momentum_accum_type", "second_order_momentum_accum_type",
          "velocity_accum_type")


class SGD(Optimizer, torch.optim.SGD):
    """poptorch.optim.SGD (the separate-momentum variant)."""

    _child_only = ["loss_scaling", "use_combined_accum", "accum_type", "velocity_accum_type",
                   "max_grad_norm", "velocity_scaling"]

    def __init__(self, params: Iterable[Any], lr: float, momentum: float | None = None,
                 dampening: float | None = None, weight_decay: float | None = None,
                 nesterov: bool | None = None, loss_scaling: float | None = None,
                 velocity_scaling: float | None = None, use_combined_accum: bool | None = None,
                 accum_type: torch.dtype | None = None,
                 velocity_accum_type: torch.dtype | None = None,
                 max_grad_norm: float | None = None) -> None:
        given = _given(locals())
        torch.optim.SGD.__init__(self, params, **_parent(given, self._child_only))
        self._poptorch_init(
            given, ["loss_scaling"], loss_scaling=1.0 if loss_scaling is None else loss_scaling,
            use_combined_accum=bool(use_combined_accum),
            accum_type=accum_type or torch.float32,
            velocity_accum_type=velocity_accum_type or torch.float32,
            max_grad_norm=math.inf if max_grad_norm is None else max_grad_norm)


class Adam(Optimizer, torch.optim.Adam):
    """poptorch.optim.Adam (L2 weight decay, bias correction)."""

    _child_only = ["loss_scaling", "accum_type", "first_order_momentum_accum_type",
                   "second_order_momentum_accum_type", "max_grad_norm"]

    def __init__(self, params: Iterable[Any], lr: float | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None, amsgrad: bool | None = None,
                 loss_scaling: float | None = None, accum_type: torch.dtype | None = None,
                 first_order_momentum_accum_type: torch.dtype | None = None,
                 second_order_momentum_accum_type: torch.dtype | None = None,
                 max_grad_norm: float | None = None) -> None:
        given = _given(locals())
        torch.optim.Adam.__init__(self, params, **_parent(given, self._child_only))
        self._poptorch_init(given, ["loss_scaling"], **_child_attrs(given))


class AdamW(Optimizer, torch.optim.AdamW):
    """poptorch.optim.AdamW (decoupled weight decay; ``bias_correction`` switchable)."""

    _child_only = ["loss_scaling", "bias_correction", "accum_type",
                   "first_order_momentum_accum_type", "second_order_momentum_accum_type",
                   "max_grad_norm"]

    def __init__(self, params: Iterable[Any], lr: float | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None, amsgrad: bool | None = None,
                 loss_scaling: float | None = None, bias_correction: bool | None = None,
                 accum_type: torch.dtype | None = None,
                 first_order_momentum_accum_type: torch.dtype | None = None,
                 second_order_momentum_accum_type: torch.dtype | None = None,
                 max_grad_norm: float | None = None) -> None:
        given = _given(locals())
        torch.optim.AdamW.__init__(self, params, **_parent(given, self._child_only))
        self._poptorch_init(given, ["loss_scaling"], **_child_attrs(given),
                            bias_correction=True if bias_correction is None else bias_correction)


class RMSprop(Optimizer, torch.optim.RMSprop):
    """poptorch.optim.RMSprop."""

    _child_only = ["loss_scaling", "accum_type", "first_order_momentum_accum_type",
                   "second_order_momentum_accum_type", "max_grad_norm", "use_tf_variant"]

    def __init__(self, params: Iterable[Any], lr: float | None = None,
                 alpha: float | None = None, eps: float | None = None,
                 weight_decay: float | None = None, momentum: float | None = None,
                 centered: bool | None = None, loss_scaling: float | None = None,
                 accum_type: torch.dtype | None = None,
                 first_order_momentum_accum_type: torch.dtype | None = None,
                 second_order_momentum_accum_type: torch.dtype | None = None,
                 use_tf_variant: bool | None = None, max_grad_norm: float | None = None) -> None:
        given = _given(locals())
        torch.optim.RMSprop.__init__(self, params, **_parent(given, self._child_only))
        self._poptorch_init(given, ["loss_scaling"], **_child_attrs(given),
                            use_tf_variant=bool(use_tf_variant))


class LAMB(Optimizer, torch.optim.Optimizer):
    """poptorch.optim.LAMB (layer-wise trust ratio; no torch counterpart)."""

    _child_only = ["loss_scaling", "bias_correction", "accum_type",
                   "first_order_momentum_accum_type", "second_order_momentum_accum_type",
                   "max_grad_norm"]

    def __init__(self, params: Iterable[Any], lr: float | None = None,
                 betas: tuple[float, float] | None = None, eps: float | None = None,
                 weight_decay: float | None = None, bias_correction: bool | None = None,
                 loss_scaling: float | None = None, max_weight_norm: float | None = None,
                 accum_type: torch.dtype | None = None,
                 first_order_momentum_accum_type: torch.dtype | None = None,
                 second_order_momentum_accum_type: torch.dtype | None = None,
                 max_grad_norm: float | None = None) -> None:
        given = _given(locals())
        defaults = {"lr": 1e-3 if lr is None else lr,
                    "betas": (0.9, 0.999) if betas is None else betas,
                    "eps": 1e-8 if eps is None else eps,
                    "weight_decay": 1e-2 if weight_decay is None else weight_decay,
                    "max_weight_norm": 65500.0 if max_weight_norm is None else max_weight_norm}
        torch.optim.Optimizer.__init__(self, params, defaults)
        self._poptorch_init(given, ["loss_scaling"], **_child_attrs(given),
                            bias_correction=True if bias_correction is None else bias_correction)


def _child_attrs(given: dict[str, Any]) -> dict[str, Any]:
    return {"loss_scaling": 1.0 if given.get("loss_scaling") is None else given["loss_scaling"],
            "accum_type": given.get("accum_type") or torch.float32,
            "first_order_momentum_accum_type":
                given.get("first_order_momentum_accum_type") or torch.float32,
            "second_order_momentum_accum_type":
                given.get("second_order_momentum_accum_type") or torch.float32,
            "max_grad_norm": math.inf if given.get("max_grad_norm") is None
            else given["max_grad_norm"]}


# -- conversion: what the device receives (poptorch's _optimizer_attributes) -------------------

#: Values at which an attribute counts as constant when the optimizer has no variable_attrs
#: (a torch.optim optimizer): poptorch's ``_IsEqualTo`` references.
_CONST_AT = {"momentum": 0.0, "dampening": 0.0, "eps": 1e-08, "max_weight_norm": 65500.0}
_GROUP_VARS = {"SGD": ["lr", "momentum", "dampening", "weight_decay", "nesterov"],
               "Adam": ["lr", "betas", "eps", "weight_decay"],
               "AdamW": ["lr", "betas", "eps", "weight_decay"],
               "RMSprop": ["lr", "alpha", "eps", "weight_decay", "momentum", "centered"],
               "LAMB": ["lr", "betas", "eps", "weight_decay", "max_weight_norm"]}


def optimizer_type(optimizer: Any) -> str:
    """poptorch's optimizer type, or a refusal for what it does not support."""
    if isinstance(optimizer, torch.optim.SGD):
        return "SGD"
    decoupled = any(g.get("decoupled_weight_decay") for g in optimizer.param_groups)
    if isinstance(optimizer, torch.optim.AdamW) or (
            isinstance(optimizer, torch.optim.Adam) and decoupled):
        kind = "AdamW"  # checked before Adam: torch's AdamW subclasses Adam
    elif isinstance(optimizer, torch.optim.Adam):
        kind = "Adam"
    elif isinstance(optimizer, torch.optim.RMSprop):
        centered = {bool(g.get("centered", False)) for g in optimizer.param_groups}
        if len(centered) > 1:
            raise AssertionError("All parameter groups must have the same value for the "
                                 "'centered' attribute")
        return "RMSprop"
    elif isinstance(optimizer, LAMB):
        return "LAMB"
    else:
        raise AssertionError("Unsupported optimizer type. Types supported SGD, Adam, AdamW, "
                             f"RMSprop, LAMB (got {type(optimizer).__name__})")
    if any(g.get("amsgrad") for g in optimizer.param_groups):
        raise ValueError("Only non-amsgrad Adam/AdamW optimizers are supported.")
    return kind


def _is_const(optimizer: Any, kind: str, name: str, value: Any) -> bool:
    attrs = getattr(optimizer, "variable_attrs", None)
    if isinstance(attrs, VariableAttributes):
        return attrs.isConstant(name)
    if name == "lr":
        return False
    if name == "loss_scaling":
        return value == 1.0
    if name == "weight_decay":
        return value == (1e-2 if kind == "AdamW" else 0.0)
    if name in ("betas", "alpha", "nesterov", "centered"):
        return True
    return value == _CONST_AT.get(name)


def snapshot(optimizer: Any, auto_loss_scaling: bool = False) -> dict[str, Any]:
    """The device's copy of the optimizer: type, per-group ``(value, is_const)``, attributes."""
    kind = optimizer_type(optimizer)
    accum = {k: getattr(optimizer, k, torch.float32) for k in _ACCUM}
    for name, dtype in accum.items():
        if dtype not in (torch.float16, torch.float32):
            raise ValueError(f"{name} must be set to either torch.float16 or torch.float32 "
                             f"not {dtype}")
    loss_scaling = float(getattr(optimizer, "loss_scaling", 1.0))
    attrs = getattr(optimizer, "variable_attrs", None)
    if auto_loss_scaling and isinstance(attrs, VariableAttributes) and \
            attrs.isConstant("loss_scaling"):
        attrs.markAsVariable("loss_scaling")
    groups = []
    for group in optimizer.param_groups:
        values = {}
        for name in _GROUP_VARS[kind]:
            if name in group:
                value = group[name]
                value = tuple(value) if isinstance(value, (list, tuple)) else value
                values[name] = (value, _is_const(optimizer, kind, name, value))
        groups.append(values)
    max_grad_norm = getattr(optimizer, "max_grad_norm", math.inf)
    return {
        "type": kind,
        "bias_correction": bool(getattr(optimizer, "bias_correction", True)),
        "loss_scaling": (loss_scaling, _is_const(optimizer, kind, "loss_scaling", loss_scaling)
                         and not auto_loss_scaling),
        "max_grad_norm": math.inf if max_grad_norm is None else float(max_grad_norm),
        **accum,
        "groups": groups,
    }


def check_replacement(old: dict[str, Any], new: dict[str, Any]) -> None:
    """popart's ``Optimizer::validReplacement`` / ``OptimizerValue::validReplacement``."""
    if old["type"] != new["type"]:
        raise RuntimeError(f"Can not replace optimizer of type {old['type']} with new optimizer "
                           f"of type {new['type']}")
    pairs = [(old["loss_scaling"], new["loss_scaling"])]
    if len(old["groups"]) != len(new["groups"]):
        raise RuntimeError("the new optimizer has a different number of parameter groups")
    for a, b in zip(old["groups"], new["groups"], strict=True):
        pairs += [(a[k], b[k]) for k in a if k in b]
    for (old_value, old_const), (new_value, new_const) in pairs:
        if old_const != new_const:
            raise RuntimeError("Can not replace a constant value with a non constant value.")
        if old_const and old_value != new_value:
            raise RuntimeError("Values are constant but do not match.")


# -- the device's optimizer --------------------------------------------------------------------

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


class DeviceOptimizer:
    """The optimizer as the executable runs it: hyper-parameters from the last snapshot,
    state (momenta, step counts) kept on the device, keyed by parameter name."""

    def __init__(self, config: dict[str, Any], names: list[list[str]]) -> None:
        self.config = config
        self.names = names  # parameter names per group (fixed at compile)
        self.state: dict[str, dict[str, Any]] = {}
        self.stochastic_rounding = False

    def replace(self, config: dict[str, Any]) -> None:
        """A ``setOptimizer`` that reached the device."""
        self.config = config

    def _write(self, param: torch.Tensor, value: torch.Tensor) -> None:
        if param.dtype == torch.float16 and self.stochastic_rounding:
            value = stochastic_round_to_half(value)
        param.copy_(value.to(param.dtype))

    @torch.no_grad()
    def step(self, weights: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        """One update of ``weights`` (device tensors) from mean, unscaled fp32 gradients."""
        cfg = self.config
        if math.isfinite(cfg["max_grad_norm"]) and grads:
            norm = torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads.values()])).item()
            if math.isfinite(norm) and norm > cfg["max_grad_norm"]:
                for g in grads.values():
                    g.mul_(cfg["max_grad_norm"] / norm)
        rule = getattr(self, f"_{cfg['type'].lower()}")
        for names, group in zip(self.names, cfg["groups"], strict=True):
            hyper = {k: v[0] for k, v in group.items()}
            for name in names:
                if name in grads:
                    state = self.state.setdefault(name, {"step": 0})
                    state["step"] += 1
                    weight = weights[name]
                    self._write(weight, rule(weight.float(), grads[name], state, hyper))

    def _moment(self, state: dict[str, Any], key: str, like: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
        if key not in state:
            state[key] = torch.zeros_like(like, dtype=dtype)
        return state[key]

    def _sgd(self, w: torch.Tensor, g: torch.Tensor, state: dict[str, Any],
             h: dict[str, Any]) -> torch.Tensor:
        d = g + h.get("weight_decay", 0.0) * w
        momentum = h.get("momentum", 0.0)
        if momentum:
            buf = self._moment(state, "velocity", w, self.config["velocity_accum_type"])
            new = d.clone() if state["step"] == 1 else \
                buf.float() * momentum + (1 - h.get("dampening", 0.0)) * d
            buf.copy_(new)
            d = d + momentum * new if h.get("nesterov") else new
        return w - h["lr"] * d

    def _adam_moments(self, g: torch.Tensor, state: dict[str, Any], betas: tuple[float, float],
                      w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        beta1, beta2 = betas
        m_store = self._moment(state, "m", w, self.config["first_order_momentum_accum_type"])
        v_store = self._moment(state, "v", w, self.config["second_order_momentum_accum_type"])
        m = m_store.float().mul_(beta1).add_(g, alpha=1 - beta1)
        v = v_store.float().mul_(beta2).addcmul_(g, g, value=1 - beta2)
        m_store.copy_(m)
        v_store.copy_(v)
        if self.config["bias_correction"]:
            m = m / (1 - beta1 ** state["step"])
            v = v / (1 - beta2 ** state["step"])
        return m, v

    def _adam(self, w: torch.Tensor, g: torch.Tensor, state: dict[str, Any],
              h: dict[str, Any]) -> torch.Tensor:
        g = g + h["weight_decay"] * w  # Adam: L2 regularisation in the gradient
        m, v = self._adam_moments(g, state, h["betas"], w)
        return w - h["lr"] * m / (v.sqrt() + h["eps"])

    def _adamw(self, w: torch.Tensor, g: torch.Tensor, state: dict[str, Any],
               h: dict[str, Any]) -> torch.Tensor:
        m, v = self._adam_moments(g, state, h["betas"], w)
        return w - h["lr"] * (m / (v.sqrt() + h["eps"]) + h["weight_decay"] * w)

    def _lamb(self, w: torch.Tensor, g: torch.Tensor, state: dict[str, Any],
              h: dict[str, Any]) -> torch.Tensor:
        m, v = self._adam_moments(g, state, h["betas"], w)
        r = m / (v.sqrt() + h["eps"]) + h["weight_decay"] * w
        w_norm = min(torch.linalg.vector_norm(w).item(), h["max_weight_norm"])
        r_norm = torch.linalg.vector_norm(r).item()
        trust = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
        return w - h["lr"] * trust * r

    def _rmsprop(self, w: torch.Tensor, g: torch.Tensor, state: dict[str, Any],
                 h: dict[str, Any]) -> torch.Tensor:
        g = g + h.get("weight_decay", 0.0) * w
        alpha = h.get("alpha", 0.99)
        sq_store = self._moment(state, "square_avg", w,
                                self.config["second_order_momentum_accum_type"])
        sq = sq_store.float().mul_(alpha).addcmul_(g, g, value=1 - alpha)
        sq_store.copy_(sq)
        if h.get("centered"):
            ga_store = self._moment(state, "grad_avg", w,
                                    self.config["first_order_momentum_accum_type"])
            ga = ga_store.float().mul_(alpha).add_(g, alpha=1 - alpha)
            ga_store.copy_(ga)
            sq = sq - ga * ga
        step = g / (sq.sqrt() + h.get("eps", 1e-8))
        momentum = h.get("momentum", 0.0)
        if momentum:
            buf_store = self._moment(state, "momentum_buffer", w,
                                     self.config["first_order_momentum_accum_type"])
            buf = buf_store.float().mul_(momentum).add_(step)
            buf_store.copy_(buf)
            step = buf
        return w - h["lr"] * step
