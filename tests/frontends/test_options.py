"""The run options are declared once: both front ends list them, one set-up reads them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa.errors import QABenchError
from qa.frontends.cli import build_parser
from qa.frontends.options import RUN_OPTIONS, read_run_options
from qa.results.store import RunResult
from qa.run.runner import prepare_run, write_run_report

ROOT = Path(__file__).resolve().parents[2]
FLAGS = {flag for flag, _ in RUN_OPTIONS}


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))


@pytest.mark.e2e
def test_cli_run_help_and_pytest_help_list_the_same_run_options() -> None:
    run = next(a for a in build_parser()._subparsers._actions  # the "run" sub-parser
               if a.choices and "run" in a.choices).choices["run"]
    cli = _flags(run.format_help()) - {"--help"}
    pytest_help = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p",
                                  "no:cacheprovider"], capture_output=True, text=True,
                                 cwd=ROOT, timeout=120).stdout
    group = pytest_help.split("qa-bench (the options of qa-bench run):", 1)[1].split("\n\n")[0]
    assert cli == FLAGS
    assert _flags(group) == FLAGS


def _values(tmp_path: Path, **given: object) -> dict[str, object]:
    values = read_run_options(lambda dest: None)
    values.update({"profile": "smoke", "set": [], "out": str(tmp_path / "run"), **given})
    return values


def test_default_baselines_and_reports_are_under_home(tmp_path: Path) -> None:
    plan = prepare_run(_values(tmp_path, out=None), tmp_path)
    assert plan.options.baselines_root == tmp_path / "baselines"
    assert plan.options.references == tmp_path / "baselines" / "reference.toml"
    assert plan.options.out_dir.parent == tmp_path / "reports"
    assert not plan.options.out_dir.exists()  # checked writable, no empty folder left behind


def test_replicas_and_repeat_are_run_options_of_both_front_ends(tmp_path: Path) -> None:
    plan = prepare_run(_values(tmp_path, replicas="1,2", repeat=3), tmp_path)
    assert [e.config.torch.replicas for e in plan.entries] == [1, 2]
    assert plan.options.repeat == 3
    with pytest.raises(QABenchError, match="--repeat must be at least 1"):
        prepare_run(_values(tmp_path, repeat=0), tmp_path)


def test_published_references_come_from_the_given_baselines_folder(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "reference.toml").write_text(
        '[[reference]]\nmodel = "tiny-roformer"\ndataset = "synthetic"\nlabel = "From X"\n'
        'source = "a test"\nmetrics = {f1 = 12.5}\n', encoding="utf-8")
    plan = prepare_run(_values(tmp_path, baselines=str(folder)), tmp_path)
    key = {"backend": "torch", "pod": "cpu", "model": "tiny-roformer", "dataset": "synthetic"}
    result = RunResult(key=key, config={}, metrics={"exact_match": 1.0, "f1": 2.0}, timings={})
    report = write_run_report([result], [], plan.options, [], incomplete=False)
    assert "From X" in report.read_text(encoding="utf-8")


def test_qa_bench_config_lists_every_field_with_default_and_help(
        capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from qa.config.schema import RunConfig
    from qa.frontends.cli import main

    assert main(["config"]) == 0
    out = capsys.readouterr().out
    config = RunConfig()
    core = [(s.name, getattr(config, s.name)) for s in dataclasses.fields(config)
            if s.name != "sections"]
    for name, section in [*core, *config.sections]:  # each backend's own section too
        for f in dataclasses.fields(section):
            line = next(x for x in out.splitlines()
                        if x.strip().startswith(f"{name}.{f.name} = "))
            assert f.metadata["help"] in line
    assert "  train.learning_rate = 0.001 " in out


def test_the_default_profiles_ship_inside_the_package() -> None:
    from qa.run import profiles

    shipped = {p.stem for p in profiles.SHIPPED.glob("*.toml")}
    assert {"smoke", "nightly", "sdk-upgrade"} <= shipped
    assert profiles.load_profile("smoke").path.parent == profiles.SHIPPED
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"run/profiles/*.toml"' in pyproject
