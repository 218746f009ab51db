"""The backend contract: every call the pipeline makes on a backend binds on every backend.

The calls are read from the pipeline's own source with ``ast`` (not copied here by hand), so a
keyword added to a call in ``qa/run/pipeline.py`` is checked against every registered backend the
moment it is written. This is the class of break that kept the IPU backend from ever running:
``backend_cls(padding_side=...)`` and ``train(..., progress=..., monitor=...)`` against an
``IPUBackend`` that took neither.
"""

from __future__ import annotations

import pytest
from helpers.contract import ALL_CALLS, _bind

from qa import backends
from qa.backends.base import Backend


def test_the_callers_are_read() -> None:
    methods = {method for _, method, _, _ in ALL_CALLS}
    # If the parse found none of these, the test below would pass vacuously.
    assert {"__init__", "available", "fingerprint", "compile", "train", "predict", "cost_seconds",
            "describe", "versions"} <= methods




@pytest.mark.parametrize("name", backends.names())
@pytest.mark.parametrize(("where", "method", "n_args", "keywords"), ALL_CALLS,
                         ids=[f"{w}-{m}" for w, m, _, _ in ALL_CALLS])
def test_pipeline_calls_bind(name: str, where: str, method: str, n_args: int,
                             keywords: list[str]) -> None:
    cls = backends.get(name)
    try:
        _bind(cls, method, n_args, keywords)
    except TypeError as exc:
        pytest.fail(f"{where}: {cls.__name__}.{method}({n_args} positional, "
                    f"{', '.join(keywords) or 'no keywords'}) does not bind: {exc}")


@pytest.mark.parametrize("name", backends.names())
def test_base_declares_every_call(name: str) -> None:
    """Every method the callers use is declared by the contract (base.Backend) itself."""
    for where, method, n_args, keywords in ALL_CALLS:
        assert hasattr(Backend, method), f"{where}: {method} is not part of qa.backends.base"
        _bind(Backend, method, n_args, keywords)


@pytest.mark.parametrize("name", backends.names())
def test_backends_construct_with_the_pipeline_arguments(name: str) -> None:
    backend = backends.get(name)(padding_side="left")
    assert backend.padding_side == "left"


def test_a_new_backend_is_one_module_and_one_registry_line(tmp_path, monkeypatch) -> None:
    """Pods, result key, marks and failure kinds all come from the backend class itself (a
    backend from another distribution, through the entry point: tests/test_outside_backend.py).
    """
    from qa.run import profiles
    from qa.run.pipeline import result_key

    package = tmp_path / "toy_backend"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from qa.backends.base import Backend, BackendFailure\n"
        "class Melted(BackendFailure):\n"
        "    status = 'melted'\n"
        "class ToyBackend(Backend):\n"
        "    NAME = 'toy'\n"
        "    PODS = ('rack1', 'rack2')\n"
        "    MARKS = {'toy': 'needs the toy accelerator'}\n"
        "    available = classmethod(lambda cls, config=None: (False, 'no toy here'))\n"
        "    fingerprint = classmethod(lambda cls, config: {'kind': 'toy'})\n"
        "    @classmethod\n"
        "    def entry_marks(cls, pod):\n"
        "        return ('toy',)\n"
        "    compile = train = predict = None\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    backends.register("toy", "toy_backend:ToyBackend")  # the one registry line
    with pytest.warns(DeprecationWarning, match="ToyBackend.PODS is deprecated: name it SLOTS"):
        backends.get("toy")  # written with the contract's old spelling (PODS): still a backend

    profile = profiles.Profile(name="p", description="", backend="toy", models=["tiny-bert"],
                               pods=["rack2"], datasets=["synthetic"], seeds=[42])
    (entry,) = profiles.expand(profiles.select(profile))
    assert entry.config.hardware.pod == "rack2" and entry.marks == ("toy",)
    assert result_key(entry.config)["pod"] == "rack2"
    with pytest.raises(Exception, match="unknown pod 'rack3'"):
        profiles.select(profile, pods=["rack3"])
    cls = backends.get("toy")
    import toy_backend

    assert cls.failure_status(toy_backend.Melted("hot")) == "melted"
    assert cls.failure_status(ValueError("x")) is None


def test_failure_kinds_come_from_the_backend() -> None:
    from qa.backends.base import Diverged
    from qa.results.store import RunResult
    from qa.run.pipeline import _record_failure

    status = backends.get("torch").failure_status  # the torch loop raises the contract's kind
    result = RunResult(key={}, config={})
    _record_failure(result, "train", Diverged("loss is nan"), status(Diverged("loss is nan")))
    assert result.status == "diverged" and result.failure["stage"] == "train"
    _record_failure(result, "train", ValueError("boom"), status(ValueError("boom")))
    assert result.status == "failed"


def test_the_flops_probe_runs_only_where_the_host_is_the_hardware() -> None:
    """MFU and the probe during training measure the device the steps ran on, or nothing."""
    from qa.config.schema import RunConfig, apply_overrides

    cpu = apply_overrides(RunConfig(), ["hardware.backend=torch", "torch.device=cpu"])
    assert backends.get("torch").probe_device(cpu) == "cpu"
    ipu = apply_overrides(RunConfig(), ["hardware.backend=ipu", "hardware.pod=pod16"])
    # A host matmul is no measure of an IPU (nor of the emulation standing in for one).
    assert backends.get("ipu").probe_device(ipu) is None


def test_each_backend_describes_its_own_hardware() -> None:
    """The wording of a report's hardware line is the backend's; the report reads it from the
    fingerprint (``description``, written when the entry runs) and imports no backend."""
    from qa.measure.hardware import describe

    cpu = {"kind": "cpu", "cpu": "Test CPU", "cpu_id": "Test/25/1/1", "cores": 2, "threads": 2,
           "torch_build": "cpu"}
    gpu = {"kind": "cuda", "gpu": "NVIDIA H100", "gpus": 2, "torch_build": "cuda12.1"}
    ipu = {"kind": "ipu", "pod": "pod16", "ipus": 16, "emulated": True}
    torch_cls, ipu_cls = backends.get("torch"), backends.get("ipu")
    assert torch_cls.describe(cpu) == "Test CPU [Test/25/1/1] 2 cores, 2 threads, torch cpu"
    assert torch_cls.describe(gpu) == "2× NVIDIA H100, torch cuda12.1"
    assert ipu_cls.describe(ipu) == "IPU pod16 (emulated)"
    assert describe({**ipu, "description": ipu_cls.describe(ipu)}) == "IPU pod16 (emulated)"
    # A fingerprint recorded without its description: its identity fields, never "None"; a
    # host CPU or GPU reads as the torch backend would have described it (old results).
    assert describe(ipu) == "ipu: pod pod16, ipus 16, emulated"
    assert describe(cpu) == torch_cls.describe(cpu) and describe(gpu) == torch_cls.describe(gpu)
    assert describe({"kind": "cpu", "cores": 2}) == "cpu: cores 2"


def test_each_backend_prices_its_own_entries() -> None:
    """Sharding's estimate: the work from the config, its price in seconds from the backend."""
    from qa.config.schema import RunConfig, apply_overrides

    ipu = apply_overrides(RunConfig(), ["hardware.backend=ipu", "hardware.pod=pod16"])
    cpu = apply_overrides(RunConfig(), ["hardware.backend=torch", "torch.device=cpu"])
    cuda = apply_overrides(cpu, ["torch.device=cuda", "torch.replicas=2"])
    flops, params = 1e15, 110e6
    assert backends.get("ipu").cost_seconds(ipu, flops, params) == pytest.approx(
        flops / (387 * 6 * 110e6 * 384) + 0.3 * 110)  # 16 IPUs, plus the compile
    assert backends.get("torch").cost_seconds(cpu, flops, params) == flops / 2e10
    assert backends.get("torch").cost_seconds(cuda, flops, params) == flops / (4e13 * 2)
    assert Backend.cost_seconds(cpu, flops, params) == flops / 2e10  # the contract's default


def test_the_backend_reports_its_own_packages() -> None:
    """optimum-graphcore is the IPU backend's to report, not every result's."""
    from qa.results.store import environment_record

    assert "optimum-graphcore" not in environment_record()["versions"]
    assert environment_record({"optimum-graphcore": "9.9"})["versions"][
        "optimum-graphcore"] == "9.9"
    assert set(backends.get("torch").versions()) <= {"qa-bench"}
