"""The poptorch emulation (tests/emulation) keeps the IPU semantics the suite depends on.

The emulation stands in for IPU hardware in the ``ipu-emulated`` env; these tests check it
against plain torch. It is loaded under another name (``emulated_poptorch``) so that this
session never gains an importable ``poptorch`` (the IPU backend must stay unavailable here).
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


@pytest.fixture
def machine(monkeypatch, poptorch) -> int:
    monkeypatch.setenv(poptorch.ENV_VAR, "16")
    return 16


class Tiny(torch.nn.Module):
    """A regression model returning (loss, prediction), loss marked by identity_loss."""

    def __init__(self, poptorch: ModuleType) -> None:
        super().__init__()
        self.poptorch = poptorch
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        out = self.layer(x).squeeze(-1)
        if y is None:
            return (out,)
        loss = self.poptorch.identity_loss(((out - y) ** 2).mean(), reduction="none")
        return loss, out


def options(poptorch: ModuleType, replicas: int = 1, accumulation: int = 1,
            iterations: int = 1) -> object:
    opts = poptorch.Options().replicationFactor(replicas).deviceIterations(iterations)
    opts.Training.gradientAccumulation(accumulation)
    opts.Training.accumulationAndReplicationReductionType(poptorch.ReductionType.Mean)
    return opts


def test_off_unless_enabled(monkeypatch, poptorch) -> None:
    monkeypatch.delenv(poptorch.ENV_VAR, raising=False)
    assert not poptorch.ipuHardwareIsAvailable() and poptorch.ipuHardwareVersion() == -1
    monkeypatch.setenv(poptorch.ENV_VAR, "4")
    assert poptorch.ipuHardwareIsAvailable(4) and not poptorch.ipuHardwareIsAvailable(8)
    assert poptorch.ipuHardwareVersion() == 2 and poptorch.EMULATED


def test_dataloader_batch_is_the_combined_batch_and_drops_the_rest(poptorch) -> None:
    data = torch.utils.data.TensorDataset(torch.arange(100.0))
    loader = poptorch.DataLoader(options(poptorch, replicas=4, accumulation=2, iterations=3),
                                 data, batch_size=2)
    sizes = [len(batch[0]) for batch in loader]
    assert loader.combinedBatchSize == 2 * 4 * 2 * 3 == 48
    assert sizes == [48, 48] and len(loader) == 2  # 100 = 2 x 48 + 4 dropped


def test_one_training_call_is_accumulation_and_one_adamw_step(machine, poptorch) -> None:
    torch.manual_seed(0)
    model = Tiny(poptorch)
    reference = copy.deepcopy(model.layer)
    x, y = torch.randn(16, 4), torch.randn(16)
    optimizer = poptorch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01,
                                     loss_scaling=64.0)
    executor = poptorch.trainingModel(model, options(poptorch, replicas=2, accumulation=4),
                                      optimizer)
    loss, out = executor(x=x, y=y)  # 8 micro batches of 2; OutputMode.Default = Final
    torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=0.1, weight_decay=0.01)
    micro = [((reference(x[i:i + 2]).squeeze(-1) - y[i:i + 2]) ** 2).mean()
             for i in range(0, 16, 2)]
    torch.stack(micro).mean().backward()  # Mean over accumulation steps and replicas
    torch_optimizer.step()
    assert torch.allclose(model.layer.weight, reference.weight, atol=1e-6)
    assert torch.allclose(model.layer.bias, reference.bias, atol=1e-6)
    assert loss.shape == (2,) and out.shape == (4,)  # the last micro batch of each replica
    assert torch.allclose(loss, torch.stack(micro[-2:]).detach(), atol=1e-6)


def test_output_modes(machine, poptorch) -> None:
    x, y = torch.randn(8, 4), torch.randn(8)
    shapes = {}
    for mode in (poptorch.OutputMode.All, poptorch.OutputMode.Sum, poptorch.OutputMode.Final):
        model = Tiny(poptorch)
        opts = options(poptorch, replicas=2, accumulation=2).outputMode(mode)
        executor = poptorch.trainingModel(model, opts, poptorch.optim.AdamW(model.parameters()))
        loss, out = executor(x=x, y=y)
        shapes[mode.name] = (tuple(loss.shape), tuple(out.shape))
        executor.destroy()
    assert shapes == {"All": ((4,), (8,)), "Sum": ((2,), (4,)), "Final": ((2,), (4,))}


def test_compile_is_cached_and_shapes_are_static(machine, poptorch, tmp_path) -> None:
    x, y = torch.randn(8, 4), torch.randn(8)
    runs = []
    for _ in range(2):
        model = Tiny(poptorch)
        opts = options(poptorch, accumulation=2)
        opts.enableExecutableCaching(str(tmp_path))
        executor = poptorch.trainingModel(model, opts, poptorch.optim.AdamW(model.parameters()))
        executor.compile(x=x, y=y)
        runs.append((executor.cache_hit, executor.compile_seconds, len(list(tmp_path.iterdir()))))
        with pytest.raises(RuntimeError, match="compile the model"):
            executor(x=torch.randn(16, 4), y=torch.randn(16))
        executor.destroy()
    (cold_hit, cold_s, files_after_cold), (warm_hit, warm_s, files_after_warm) = runs
    assert (cold_hit, warm_hit) == (False, True) and files_after_cold == files_after_warm == 1
    assert warm_s < cold_s


def test_executables_share_the_machine_until_detached(machine, poptorch) -> None:
    def wrapped(replicas: int) -> object:
        model = Tiny(poptorch)
        model.layer = poptorch.BeginBlock(model.layer, "L", ipu_id=3)  # 4 IPUs per replica
        # Sharded, as optimum-graphcore runs inference (pipelined would need 2 iterations).
        opts = options(poptorch, replicas=replicas).setExecutionStrategy(
            poptorch.ShardedExecution())
        return poptorch.inferenceModel(model, opts)

    training, inference = wrapped(4), wrapped(4)
    training.compile(x=torch.randn(4, 4))
    with pytest.raises(RuntimeError, match="Failed to acquire 16 IPUs"):
        inference.compile(x=torch.randn(4, 4))  # compiles, then cannot attach
    training.detachFromDevice()
    inference.attachToDevice()
    assert inference.isAttachedToDevice() and not training.isAttachedToDevice()
    with pytest.raises(RuntimeError, match="Failed to acquire 16 IPUs"):
        training(x=torch.randn(4, 4))  # a call attaches (poptorch), but the IPUs are taken
    inference.destroy()
    training.attachToDevice()
    assert training(x=torch.randn(4, 4))[0].shape == (4,)
    training.destroy()


def test_stochastic_rounding_keeps_updates_smaller_than_an_ulp(poptorch) -> None:
    torch.manual_seed(0)
    target = torch.full((20000,), 1.0 + 2 ** -13)  # a quarter of fp16's spacing above 1.0
    rounded = poptorch.optim.stochastic_round_to_half(target).float()
    assert set(rounded.unique().tolist()) == {1.0, 1.0 + 2 ** -10}
    assert abs(rounded.mean().item() - target[0].item()) < 2e-5  # unbiased
    assert target.half().float().mean().item() == 1.0  # round-to-nearest loses the update


@pytest.mark.parametrize("mode", ["InputChannels", "ReducingDim", "OutputChannels"])
def test_serialized_matmul_is_the_matmul(poptorch, mode: str) -> None:
    lhs, rhs = torch.randn(3, 8, 12), torch.randn(12, 6)
    out = poptorch.serializedMatMul(lhs, rhs, poptorch.MatMulSerializationMode[mode], 2)
    assert torch.allclose(out, lhs @ rhs, atol=1e-5)
