"""The poptorch emulation refuses what poptorch/popart refuse, and accepts what they accept.

Each test is one row of the rule table in docs/ipu.md (rule -> poptorch/popart source ->
emulation -> test), written against poptorch's public API only.
"""

from __future__ import annotations

import copy
from types import ModuleType

import pytest
import torch
from helpers import emulation


@pytest.fixture(scope="module")
def poptorch() -> ModuleType:
    yield from emulation.loaded()


@pytest.fixture(autouse=True)
def machine(monkeypatch, poptorch) -> None:
    monkeypatch.setenv(poptorch.ENV_VAR, "16")
    monkeypatch.delenv(poptorch.FAULT_ENV, raising=False)


class Staged(torch.nn.Module):
    """Four linear layers returning (loss, out); ``ipus`` puts them on IPUs with BeginBlock."""

    def __init__(self, poptorch: ModuleType, ipus: tuple[int, ...] = ()) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.identity_loss = poptorch.identity_loss
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(4))
        for layer, ipu in zip(self.layers, ipus, strict=False):
            poptorch.BeginBlock(layer, ipu_id=ipu)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        out = x.sum(-1)
        if y is None:
            return (out,)
        return self.identity_loss(((out - y) ** 2).mean(), reduction="none"), out


def opts(poptorch: ModuleType, accumulation: int = 1, iterations: int = 1) -> object:
    options = poptorch.Options().deviceIterations(iterations)
    options.Training.gradientAccumulation(accumulation)
    return options


def batch(n: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {"x": torch.randn(n, 4, generator=generator), "y": torch.randn(n, generator=generator)}


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# -- pipeline depth (popart_compiler/source/Compiler.cpp, popart willow/src/transforms/pipeline.cpp)

def test_pipeline_on_4_ipus_with_accumulation_2_is_refused(poptorch) -> None:
    model = Staged(poptorch, ipus=(0, 1, 2, 3))
    executor = poptorch.trainingModel(model, opts(poptorch, accumulation=2),
                                      torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(poptorch.Error, match=r"gradientAccumulation must be greater than or "
                       r"equal to the number of pipeline stages \(7\)"):
        executor(**batch(2))


def test_pipeline_with_a_valid_depth_trains(poptorch) -> None:
    model = Staged(poptorch, ipus=(0, 1, 2, 3))
    before = weights(model)
    executor = poptorch.trainingModel(model, opts(poptorch, accumulation=7),
                                      torch.optim.SGD(model.parameters(), lr=0.1))
    executor(**batch(7))
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_stages_count_ipu_switches_not_ipus(poptorch) -> None:
    # 0 -> 1 -> 0 -> 1: four forward stages on two IPUs (7 training stages).
    model = Staged(poptorch, ipus=(0, 1, 0, 1))
    executor = poptorch.trainingModel(model, opts(poptorch, accumulation=4),
                                      torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(poptorch.Error, match=r"pipeline stages \(7\)"):
        executor(**batch(4))
    # Sharded execution has no depth rule.
    model = Staged(poptorch, ipus=(0, 1, 0, 1))
    sharded = opts(poptorch, accumulation=1).setExecutionStrategy(poptorch.ShardedExecution())
    poptorch.trainingModel(model, sharded, torch.optim.SGD(model.parameters(), lr=0.1))(
        **batch(1))


def test_pipelined_inference_needs_device_iterations(poptorch) -> None:
    model = Staged(poptorch, ipus=(0, 1, 2, 3))
    with pytest.raises(poptorch.Error, match=r"deviceIterations must be greater than or equal "
                       r"to the number of pipeline stages \(4\)"):
        poptorch.inferenceModel(model, opts(poptorch, iterations=2))(x=torch.randn(2, 4))
    model = Staged(poptorch, ipus=(0, 1, 2, 3))
    out = poptorch.inferenceModel(model, opts(poptorch, iterations=4))(x=torch.randn(4, 4))
    assert out[0].shape == (4,)


# -- inferenceModel with accumulation (poptorch python/_poplar_executor.py, PoplarExecutor.__init__)

def test_inference_with_accumulation_is_refused_at_wrap(poptorch) -> None:
    with pytest.raises(poptorch.Error, match="gradientAccumulation to 1 or leave it as its "
                       "default value"):
        poptorch.inferenceModel(Staged(poptorch), opts(poptorch, accumulation=2))


# -- frozen Options, compile once, wrap once (python/_options_impl.py, _poplar_executor.py)

def test_options_are_frozen_once_a_model_is_wrapped(poptorch) -> None:
    options = opts(poptorch, accumulation=1)
    model = Staged(poptorch)
    executor = poptorch.trainingModel(model, options, torch.optim.SGD(model.parameters(), lr=0.1))
    for change in (lambda o: o.deviceIterations(2), lambda o: o.Training.gradientAccumulation(2),
                   lambda o: o.Precision.enableStochasticRounding(True),
                   lambda o: o._Popart.set("x", 1), lambda o: setattr(o, "random_seed", 3)):
        with pytest.raises(AttributeError, match="Can't modify frozen Options"):
            change(options)
        with pytest.raises(AttributeError, match="Can't modify frozen Options"):
            change(executor.options)
    assert options.clone().deviceIterations(2).device_iterations == 2  # a clone is not frozen


def test_second_compile_is_ignored(poptorch, caplog) -> None:
    model = Staged(poptorch)
    executor = poptorch.inferenceModel(model)
    executor.compile(x=torch.randn(1, 4))
    compiled = executor._compiled
    executor.compile(x=torch.randn(3, 4))  # other shapes: ignored, not recompiled
    assert executor._compiled is compiled and "already compiled" in caplog.text
    with pytest.raises(RuntimeError, match="arguments used to compile"):
        executor(x=torch.randn(3, 4))


def test_a_model_is_wrapped_for_training_once(poptorch) -> None:
    model = Staged(poptorch)
    executor = poptorch.trainingModel(model, opts(poptorch))
    with pytest.raises(RuntimeError, match="already been wrapped"):
        poptorch.trainingModel(model, opts(poptorch))
    executor.destroy()
    poptorch.trainingModel(model, opts(poptorch))  # unwrapped by destroy


# -- hyper-parameters only through setOptimizer (python/_poplar_executor.py setOptimizer;
#    popart willow/src/optimizervalue.cpp validReplacement)

def _two_steps(poptorch, push: bool) -> list[torch.Tensor]:
    model = Staged(poptorch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    executor = poptorch.trainingModel(model, opts(poptorch), optimizer)
    executor(**batch(1))
    optimizer.param_groups[0]["lr"] = 0.0  # the Python side stops training
    if push:
        executor.setOptimizer(optimizer)
    before = weights(model)
    executor(**batch(1))
    return [(a - b).abs().max() for a, b in zip(before, model.parameters(), strict=True)]


def test_a_changed_lr_reaches_the_device_only_through_set_optimizer(poptorch) -> None:
    assert max(_two_steps(poptorch, push=False)) > 0  # device still has lr 0.1
    assert max(_two_steps(poptorch, push=True)) == 0  # lr 0 pushed: nothing moves


def test_set_optimizer_keeps_type_and_constants(poptorch) -> None:
    model = Staged(poptorch)
    optimizer = poptorch.optim.AdamW(model.parameters(), lr=1e-3)  # eps left default: constant
    executor = poptorch.trainingModel(model, opts(poptorch), optimizer)
    executor(**batch(1))
    optimizer.param_groups[0]["eps"] = 1e-3
    with pytest.raises(RuntimeError, match="Values are constant but do not match"):
        executor.setOptimizer(optimizer)
    with pytest.raises(RuntimeError, match="Can not replace optimizer of type AdamW"):
        executor.setOptimizer(torch.optim.SGD(model.parameters(), lr=0.1))


# -- host/device weights (python/_poplar_executor.py copyWeightsToHost/ToDevice,
#    copyWeightsToHostIfNeeded, attachToDevice -> _on_device_attach)

def test_host_edit_reaches_the_device_only_after_copy_weights_to_device(poptorch) -> None:
    model = Staged(poptorch)
    executor = poptorch.trainingModel(model, opts(poptorch),
                                      torch.optim.SGD(model.parameters(), lr=0.0))
    executor(**batch(1))
    inference = poptorch.inferenceModel(Staged(poptorch), opts(poptorch))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # the host's copy only
    stale = executor(**batch(1))[1]
    assert stale.abs().sum() > 0  # the device still computes with its own weights
    executor.copyWeightsToDevice()
    assert executor(**batch(1))[1].abs().sum() == 0
    assert inference is not None


def test_host_sees_trained_weights_when_it_reads_them(poptorch) -> None:
    model = Staged(poptorch)
    reference = copy.deepcopy(model)
    executor = poptorch.trainingModel(model, opts(poptorch),
                                      torch.optim.SGD(model.parameters(), lr=0.1))
    executor(**batch(1))
    # Reading through the wrapped model syncs (poptorch's implicit copyWeightsToHost).
    state = model.state_dict()
    assert any(not torch.equal(state[k], v) for k, v in reference.state_dict().items())
    # An inference model of the same model picks up the trained weights.
    inference = poptorch.inferenceModel(model, opts(poptorch))
    executor(**batch(1))
    executor.detachFromDevice()
    out = inference(x=batch(1)["x"])[0]
    executor.destroy()
    with torch.no_grad():
        expected = model(x=batch(1)["x"])[0]
    assert torch.allclose(out, expected)


# -- reduction, fp16 accumulation, accepted optimizers and inputs (python/options.py,
#    python/_optimizer_attributes.py, python/optim.py)

def test_default_reduction_is_mean(poptorch) -> None:
    assert poptorch.Options().Training.reduction == poptorch.ReductionType.Mean
    model = Staged(poptorch)
    reference = copy.deepcopy(model)
    executor = poptorch.trainingModel(model, opts(poptorch, accumulation=4),
                                      torch.optim.SGD(model.parameters(), lr=0.1))
    data = batch(4)
    executor(**data)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    losses = [((reference(x=data["x"][i:i + 1])[0] - data["y"][i:i + 1]) ** 2).mean()
              for i in range(4)]
    torch.stack(losses).mean().backward()
    ref_opt.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_fp16_accumulation_type_is_read(poptorch) -> None:
    def update(accum_type: torch.dtype) -> torch.Tensor:
        model = Staged(poptorch).half()
        before = weights(model)
        optimizer = poptorch.optim.SGD(model.parameters(), lr=1.0, loss_scaling=1.0,
                                       accum_type=accum_type)
        executor = poptorch.trainingModel(model, opts(poptorch, accumulation=8), optimizer)
        data = {k: v.half() * 1e-3 for k, v in batch(8).items()}  # tiny gradients
        executor(**data)
        assert executor.options.Training.meanAccumulationAndReplicationReductionStrategy == (
            poptorch.MeanReductionStrategy.Running if accum_type == torch.float16
            else poptorch.MeanReductionStrategy.Post)
        return torch.cat([(a.float() - b.float()).flatten()
                          for a, b in zip(model.parameters(), before, strict=True)])

    assert not torch.equal(update(torch.float16), update(torch.float32))


TORCH_SGD = torch.optim.SGD


@pytest.mark.parametrize(("make", "reference"), [
    (lambda p, params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
     lambda params: TORCH_SGD(params, lr=0.1, momentum=0.9)),
    (lambda p, params: p.optim.SGD(params, lr=0.1), lambda params: TORCH_SGD(params, lr=0.1)),
    (lambda p, params: torch.optim.Adam(params, lr=0.01),
     lambda params: torch.optim.Adam(params, lr=0.01)),
    (lambda p, params: torch.optim.AdamW(params, lr=0.01),
     lambda params: torch.optim.AdamW(params, lr=0.01)),
    (lambda p, params: p.optim.AdamW(params, lr=0.01, weight_decay=0.0),
     lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.0)),
    (lambda p, params: torch.optim.RMSprop(params, lr=0.01),
     lambda params: torch.optim.RMSprop(params, lr=0.01)),
    (lambda p, params: p.optim.LAMB(params, lr=0.01), None),
], ids=["torch-SGD-momentum", "poptorch-SGD", "torch-Adam", "torch-AdamW", "poptorch-AdamW",
        "torch-RMSprop", "poptorch-LAMB"])
def test_converted_optimizers_step_like_torch(poptorch, make, reference) -> None:
    model = Staged(poptorch)
    twin = copy.deepcopy(model)
    executor = poptorch.trainingModel(model, opts(poptorch), make(poptorch, model.parameters()))
    data = batch(1)
    for _ in range(3):
        executor(**data)
    if reference is None:  # LAMB has no torch counterpart: it must move the weights
        assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters(),
                                                         strict=True))
        return
    torch_optimizer = reference(twin.parameters())
    for _ in range(3):
        torch_optimizer.zero_grad()
        ((twin(**data)[1] - data["y"]) ** 2).mean().backward()
        torch_optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), (a, b)


def test_amsgrad_is_refused(poptorch) -> None:
    model = Staged(poptorch)
    with pytest.raises(ValueError, match="non-amsgrad"):
        poptorch.trainingModel(model, opts(poptorch),
                               torch.optim.Adam(model.parameters(), amsgrad=True))


def test_positional_inputs_are_accepted(poptorch) -> None:
    model = Staged(poptorch)
    data = batch(2)
    executor = poptorch.inferenceModel(model, opts(poptorch, iterations=2))
    positional, keyword = executor(data["x"])[0], executor(x=data["x"])[0]
    assert torch.equal(positional, keyword)


# -- the test-only faults (QA_BENCH_IPU_EMULATION_FAULT) the SDK A/B must catch

def test_fault_skip_set_optimizer_keeps_the_first_lr(poptorch, monkeypatch) -> None:
    monkeypatch.setenv(poptorch.FAULT_ENV, "skip-set-optimizer")
    assert max(_two_steps(poptorch, push=True)) > 0  # lr 0 pushed, never arrived
    monkeypatch.setenv(poptorch.FAULT_ENV, "no-such-fault")
    with pytest.raises(RuntimeError, match="not a fault"):
        _two_steps(poptorch, push=True)


def test_fault_no_accumulation_applies_only_the_last_micro_batch(poptorch, monkeypatch) -> None:
    monkeypatch.setenv(poptorch.FAULT_ENV, "no-accumulation")
    model = Staged(poptorch)
    reference = copy.deepcopy(model)
    data = batch(4)
    executor = poptorch.trainingModel(model, opts(poptorch, accumulation=4),
                                      torch.optim.SGD(model.parameters(), lr=0.1))
    executor(**data)  # the executor holds the device's weights: keep it alive to read them
    ((reference(x=data["x"][3:])[0] - data["y"][3:]) ** 2).mean().backward()
    torch.optim.SGD(reference.parameters(), lr=0.1).step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
