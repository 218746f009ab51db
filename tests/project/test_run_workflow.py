"""tools/ci/run_workflow.py and the CI helper scripts: the pieces the workflow rehearsal rests on.

The harness must evaluate the workflow's expressions as GitHub does (a wrong `||` would run the
nightly with the wrong profile), refuse what it cannot run rather than guess, and carry
GITHUB_ENV / GITHUB_OUTPUT between steps; a small workflow of plain shell steps runs in full.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rw = _load("run_workflow", ROOT / "tools/ci/run_workflow.py")
CONTEXT = {"inputs": {"profile": "", "seeds": "3", "provision": False},
           "matrix": {"pod": "pod4", "shard": 2, "shards": 3, "job_timeout_minutes": 1349},
           "needs": {"plan": {"result": "success", "outputs": {"matrix": '{"include": [1]}'}}},
           "vars": {}, "__status__": "success"}


@pytest.mark.parametrize(("text", "value"), [
    ("inputs.profile || 'nightly'", "nightly"),
    ("inputs.seeds || '1'", "3"),
    ("inputs.provision && '1' || ''", ""),
    ("needs.plan.result == 'success'", True),
    ("needs.plan.result != 'success'", False),
    ("fromJSON(needs.plan.outputs.matrix)", {"include": [1]}),
    ("format('ipu-{0}', matrix.pod)", "ipu-pod4"),
    ("!cancelled() && matrix.shard == 2", True),
    ("vars.POPLAR_SDK_ENABLE", None),
])
def test_expressions_as_github_evaluates_them(text: str, value) -> None:
    assert rw.evaluate(text, CONTEXT) == value


def test_interpolation_keeps_a_whole_value_typed_and_joins_several() -> None:
    assert rw.interpolate("${{ matrix.job_timeout_minutes }}", CONTEXT) == 1349
    assert rw.interpolate("${{ matrix.pod }} shard ${{ matrix.shard }}/${{ matrix.shards }}",
                          CONTEXT) == "pod4 shard 2/3"
    assert rw.interpolate("${{ inputs.provision }}", CONTEXT) is False
    assert rw.to_text(False) == "false"


def test_conditions_default_to_success_and_know_always() -> None:
    failed = {**CONTEXT, "__status__": "failure"}
    assert rw.condition(None, CONTEXT) and not rw.condition(None, failed)
    assert rw.condition("always()", failed)
    assert rw.condition("${{ always() && needs.plan.result == 'success' }}", failed)
    assert not rw.condition("needs.plan.result == 'success'", failed)  # success() implied


def test_what_it_cannot_evaluate_stops_it() -> None:
    for text in ("hashFiles('x')", "unknown.thing", "matrix.pod ==", "1 +"):
        with pytest.raises(rw.WorkflowError):
            rw.evaluate(text, CONTEXT)


def test_env_and_output_files_in_both_syntaxes(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("A=1\nB<<EOF_x\nline one\nline=two\nEOF_x\nC=x=y\n")
    assert rw.read_key_values(path) == {"A": "1", "B": "line one\nline=two", "C": "x=y"}


WORKFLOW = """
name: toy
on:
  workflow_dispatch:
    inputs:
      word:
        default: hello
env:
  WORD: ${{ inputs.word }}
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.make.outputs.list }}
    steps:
      - id: make
        run: |
          echo "FROM_ENV=$WORD-env" >> "$GITHUB_ENV"
          echo 'list={"include":[{"n":1},{"n":2}]}' >> "$GITHUB_OUTPUT"
      - run: test "$FROM_ENV" = "$WORD-env"
  second:
    needs: first
    strategy:
      matrix: ${{ fromJSON(needs.first.outputs.list) }}
    runs-on: [self-hosted, "lab-${{ matrix.n }}"]
    steps:
      - run: echo "n=${{ matrix.n }} word=$WORD"; test "${{ matrix.n }}" = 1
      - if: always()
        run: echo "after-${{ matrix.n }}"
  third:
    needs: second
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "second was ${{ needs.second.result }}"
"""


def test_a_small_workflow_runs_in_full(tmp_path: Path) -> None:
    flow = tmp_path / "toy.yml"
    flow.write_text(WORKFLOW)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools/ci/run_workflow.py"), str(flow), "--work",
         str(tmp_path / "w"), "--input", "word=hi", "--runner-labels", "self-hosted,lab-1,lab-2"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # matrix n=2 fails its step
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["first"]["result"] == "success"
    assert [r["result"] for r in summary["second"]["runs"]] == ["success", "failure"]
    assert summary["second"]["result"] == "failure"
    assert "n=1 word=hi" in proc.stdout and "after-2" in proc.stdout  # always() ran
    assert "second was failure" in proc.stdout  # third ran (if: always()) and saw it


def test_a_job_without_its_runner_label_is_cancelled(tmp_path: Path) -> None:
    flow = tmp_path / "toy.yml"
    flow.write_text(WORKFLOW)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools/ci/run_workflow.py"), str(flow), "--work",
         str(tmp_path / "w"), "--runner-labels", "self-hosted,lab-1"],
        capture_output=True, text=True, timeout=120)
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert [r["result"] for r in summary["second"]["runs"]] == ["success", "cancelled"]
    assert "no runner has the label(s) ['lab-2']" in proc.stdout


def test_an_undeclared_input_is_refused(tmp_path: Path) -> None:
    flow = tmp_path / "toy.yml"
    flow.write_text(WORKFLOW)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools/ci/run_workflow.py"), str(flow), "--work",
         str(tmp_path / "w"), "--input", "wrod=hi"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "wrod" in proc.stderr


def test_missing_shards_names_each_lost_job(tmp_path: Path, capsys) -> None:
    ms = _load("missing_shards", ROOT / "tools/ci/missing_shards.py")
    matrix = {"include": [{"pod": "pod4", "shard": k, "shards": 2, "entries": 5,
                           "timeout_minutes": 900} for k in (1, 2)]}
    (tmp_path / "shard-pod4-1" / "run").mkdir(parents=True)
    (tmp_path / "shard-pod4-1" / "run" / "manifest.json").write_text("{}")
    assert ms.main([json.dumps(matrix), str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "::error::shard pod4 2/2 delivered nothing (label ipu-pod4" in out
    assert "shard pod4 1/2" not in out and "1 of 2 shard jobs delivered" in out


def test_enable_sdk_keeps_what_the_enable_script_exports(tmp_path: Path) -> None:
    enable = tmp_path / "enable"
    enable.write_text(f'export POPLAR_SDK_ENABLED={tmp_path}/poplar\n'
                      'export LD_LIBRARY_PATH=/sdk/lib:${LD_LIBRARY_PATH:-}\n')
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    env = {"PATH": "/usr/bin:/bin", "GITHUB_ENV": str(github_env)}
    proc = subprocess.run(["bash", str(ROOT / "tools/ci/enable-sdk.sh"), str(enable)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = rw.read_key_values(github_env)
    assert kept["POPLAR_SDK_ENABLED"] == f"{tmp_path}/poplar"
    assert kept["LD_LIBRARY_PATH"].startswith("/sdk/lib:")
    assert "PATH" not in kept  # unchanged variables are not written
    # No script named, or one that is not an SDK's: refused.
    assert subprocess.run(["bash", str(ROOT / "tools/ci/enable-sdk.sh"), ""], env=env,
                          capture_output=True).returncode == 2
    enable.write_text("export SOMETHING=1\n")
    proc = subprocess.run(["bash", str(ROOT / "tools/ci/enable-sdk.sh"), str(enable)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "did not set POPLAR_SDK_ENABLED" in proc.stdout + proc.stderr
