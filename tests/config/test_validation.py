"""The validation boundary: every config value, ``--set`` list and profile fragment is either
accepted or refused with one ``QABenchError`` line naming the field, never another exception.

The strategies are generated from the config declaration itself (``qa.config.validation
.declared_fields``: each field's type, range and choices), so a new field is fuzzed the day it is
declared, and a field whose range is dropped (``train.micro_batch_size`` accepting 0, the
regression of issue 21) fails ``test_every_declared_edge_is_judged_by_its_range``.
A few runs of the real CLI check exit 2, one stderr line, no traceback, within seconds, that a
refused run writes nothing, and that a closed pipe ends quietly.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.config.schema import RunConfig, apply_overrides
from qa.config.validation import INT_MAX, choices_of, declared_fields
from qa.errors import QABenchError
from qa.run.profiles import load_profile

FIELDS = list(declared_fields(RunConfig))
NAMES = [name for name, *_ in FIELDS]
REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- strategies


def edges(kind: str, meta: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """``(inside, outside)``: the declared range's edges and the values just beyond them."""
    if kind == "bool":
        return [True, False], ["maybe", 2]
    if meta.get("choices"):
        names = list(choices_of(meta))
        return names, ["", "nope", names[0].upper() + "x"]
    if kind == "str":
        return ["x", "a/b"], []
    step = 1 if kind == "int" else 1e-9
    inside, outside = list(meta.get("also", ())), [math.nan, math.inf, -math.inf]
    low = meta.get("min", meta.get("above"))
    high = meta.get("max", INT_MAX if kind == "int" else None)
    if "min" in meta:
        inside.append(meta["min"])
        outside.append(meta["min"] - step)
    if "above" in meta:
        inside.append(meta["above"] + step)
        outside.append(meta["above"])
    if high is not None:
        inside.append(high)
        outside.append(high + step if kind == "int" else high * 1.001 + step)
    if low is None and high is None:
        inside += [0, -1, 1e9]
    return inside, [v for v in outside if v not in inside]


def field_values(kind: str, meta: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value a user might type for a field: edges, in-range, wrong types, junk."""
    inside, outside = edges(kind, meta)
    return st.one_of(
        st.sampled_from(inside + outside + [None, "", "none", " ", "1.5", "-0", "1e400"]),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=12),
        st.lists(st.integers(), max_size=2),
    )


@st.composite
def field_and_value(draw: st.DrawFn) -> tuple[str, Any]:
    name, kind, _optional, meta = draw(st.sampled_from(FIELDS))
    return name, draw(field_values(kind, meta))


def as_set(name: str, value: Any) -> str:
    """What a user types after ``--set``."""
    text = "true" if value is True else "false" if value is False else str(value)
    return f"{name}={text}"


def assert_one_line_naming(exc: QABenchError, names: list[str]) -> None:
    message = str(exc)
    assert "\n" not in message and message.strip(), repr(message)
    assert any(name in message or name.split(".")[1] in message for name in names), message


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("name", NAMES)
def test_common_edges_of_every_field_are_refused_or_usable(name: str) -> None:
    """0, -1, 0.5, 2**32, ... on every field, whatever its declaration says: refused in one line
    naming the field, or accepted and then usable by every later stage (``later_stages``).
    Dropping a field's range (micro_batch_size >= 1) fails here."""
    for value in ANY_FIELD_EDGES:
        try:
            config = apply_overrides(RunConfig(), [as_set(name, value)])
        except QABenchError as exc:
            assert_one_line_naming(exc, [name])
        else:
            later_stages(config)


@pytest.mark.parametrize("name, kind, optional, meta", FIELDS, ids=NAMES)
def test_every_declared_edge_is_judged_by_its_range(name: str, kind: str, optional: bool,
                                                    meta: dict[str, Any]) -> None:
    """Each field's edges are accepted and the values just outside refused, naming the field.

    Cross-field rules are kept out of the way with a roomy base (max_length 65536, nodes 1).
    """
    base = ["data.max_length=65536"] if name != "data.max_length" else ["data.doc_stride=0"]
    partner = {"data.train_file": "data.validation_file",
               "data.validation_file": "data.train_file"}.get(name)
    if partner:  # the two files go together
        base.append(f"{partner}=y.json")
    inside, outside = edges(kind, meta)
    for value in inside:
        if name == "data.synthetic_questions" and value > 1:
            continue  # bounded by the template set: test_cross_field_rules
        if name == "torch.node_rank" and value > 0:
            continue  # bounded by torch.nodes: test_cross_field_rules
        if name == "data.doc_stride" and value > 65536 - 4:
            continue  # bounded by data.max_length: test_cross_field_rules
        if name == "torch.nodes" and value > 1:
            continue  # needs a rendezvous: test_cross_field_rules
        config = apply_overrides(RunConfig(), [*base, as_set(name, value)])
        section, key = name.split(".")
        assert getattr(getattr(config, section), key) is not None
    for value in outside:
        with pytest.raises(QABenchError) as info:
            apply_overrides(RunConfig(), [*base, as_set(name, value)])
        assert_one_line_naming(info.value, [name])
        assert "must be" in str(info.value) or "expects" in str(info.value)


def later_stages(config: RunConfig) -> None:
    """What the stages after validation do with the config's values, on a few features: the
    real synthetic generator, batch order, seeding and cost estimate, and the trainer's step
    arithmetic (``TorchBackend.train``). An accepted config must get through all of it; a
    value the declaration should have refused fails here (0 features per batch: the
    ZeroDivisionError of issue 21), independently of what the declaration says.
    """
    import numpy as np

    from qa.backends.torch.batching import BatchPlan, global_order
    from qa.run.sharding import estimate_cost
    from qa.task.synthetic import generate_squad

    data, train, hw = config.data, config.train, config.torch
    generate_squad(2, data.synthetic_seed, long_fraction=data.synthetic_long_fraction,
                   questions_per_context=data.synthetic_questions,
                   distractor_subjects=data.synthetic_distractor_subjects,
                   templates=data.synthetic_templates)
    lengths = np.arange(1, 12)
    world = hw.nodes * hw.replicas
    for size, shuffle in ((train.micro_batch_size * world, True), (train.eval_batch_size, False)):
        batches = global_order(lengths, BatchPlan(size, shuffle, train.group_by_length,
                                                  train.seed), 0)
        assert sum(len(b) for b in batches) == len(lengths)
    np.random.RandomState(train.seed)  # seed_everything: numpy takes 0 .. 2**32 - 1
    per_epoch = math.ceil(len(lengths) / (train.micro_batch_size * world))
    steps = train.max_steps if train.max_steps > 0 else math.ceil(
        per_epoch * train.num_train_epochs / train.gradient_accumulation_steps)
    assert steps > 0 and int(train.warmup_ratio * steps) <= steps
    assert range(train.eval_timing_rounds) and train.timing_warmup_steps >= 0
    assert config.postprocess.n_best_size >= 1 and config.postprocess.max_answer_length >= 1
    assert 0 <= config.target.value <= 100 and 0 <= config.target.every <= 1
    assert math.isfinite(estimate_cost(config)) and estimate_cost(config) >= 0


#: Numbers worth trying on every numeric field, whatever its declaration says.
ANY_FIELD_EDGES = [0, -1, 1, 2, -0.0, 0.5, 1.5, 100, 100.5, 2**32, -(2**31)]


@given(item=field_and_value(), extra=st.sampled_from(ANY_FIELD_EDGES), use_extra=st.booleans())
def test_any_value_for_any_field_is_accepted_or_refused_in_one_line(
        item: tuple[str, Any], extra: Any, use_extra: bool) -> None:
    """Accepted (and then it survives the later stages) or refused in one line naming it."""
    name, value = item
    value = extra if use_extra else value
    base = ["data.synthetic_train_contexts=2"] if name != "data.synthetic_train_contexts" else []
    for attempt in (lambda: apply_overrides(RunConfig(), [*base, as_set(name, value)]),
                    lambda: RunConfig.from_dict({name.split(".")[0]:
                                                 {name.split(".")[1]: value}})):
        try:
            config = attempt()
        except QABenchError as exc:
            assert_one_line_naming(exc, [name])
        else:  # accepted: valid again after a round trip, and usable by every later stage
            RunConfig.from_dict(config.to_dict())
            later_stages(config)


@given(sets=st.lists(st.one_of(
    field_and_value().map(lambda item: as_set(*item)),
    st.text(max_size=20),
    st.builds(lambda s, k, v: f"{s}.{k}={v}", st.sampled_from(["train", "data", "trian", ""]),
              st.text(max_size=8), st.text(max_size=8))), max_size=5))
def test_random_set_lists_are_accepted_or_refused_in_one_line(sets: list[str]) -> None:
    try:
        config = apply_overrides(RunConfig(), sets)
    except QABenchError as exc:
        assert "\n" not in str(exc)
    else:
        RunConfig.from_dict(config.to_dict())


TOML_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
        if math.isinf(f) else repr(f)),
    st.sampled_from(["true", "false", '"x"', '""', "[]", "[1, 2]", '["a"]', "{a = 1}",
                     "1979-05-27", '"none"', "0", "-1", "101", "1e400"]),
    st.text(alphabet="abcdefgh_", max_size=6).map(lambda t: f'"{t}"'))
KEYS = st.one_of(st.sampled_from([n.split(".")[1] for n in NAMES]),
                 st.text(alphabet="abcdefghz_", min_size=1, max_size=8))
SECTIONS = st.sampled_from(["data", "model", "train", "hardware", "postprocess", "target",
                            "trian", "x"])
TOP = ["models = [\"tiny-bert\"]", "models = \"a\"", "models = []", "pods = [\"cpu\"]",
       "pods = [\"cpu\", \"cpu\"]", "pods = [\"gpu\"]", "datasets = [\"synthetic\"]",
       "seeds = [\"x\"]", "seeds = [1, 1]", "seeds = [-1]", "seeds = 3", "backend = 5",
       "backend = \"troch\"", "description = [1]", "defaults = 5", "model = 1",
       "unknown_key = 1"]


@st.composite
def profile_texts(draw: st.DrawFn) -> str:
    """A profile: the good skeleton with some top-level lines swapped and random tables."""
    lines = {"models": 'models = ["tiny-bert"]', "pods": 'pods = ["cpu"]',
             "datasets": 'datasets = ["synthetic"]'}
    for line in draw(st.lists(st.sampled_from(TOP), max_size=2)):
        lines[line.split(" =")[0]] = line
    text = "\n".join(lines.values()) + "\n"
    for _ in range(draw(st.integers(0, 3))):
        header = draw(st.sampled_from(["defaults.{s}", "model.tiny-bert.{s}",
                                       "dataset.synthetic.{s}", "[defaults.{s}]", "{s}"]))
        text += f"[{header.format(s=draw(SECTIONS))}]\n"
        for _ in range(draw(st.integers(0, 3))):
            text += f"{draw(KEYS)} = {draw(TOML_VALUES)}\n"
    return text


@given(text=profile_texts())
def test_random_profiles_are_accepted_or_refused_in_one_line(text: str, tmp_path_factory:
                                                             pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("profile") / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        profile = load_profile(str(path))
    except QABenchError as exc:
        assert "\n" not in str(exc), str(exc)
        assert "fuzz.toml" in str(exc), str(exc)  # names the file
    else:
        assert profile.models and profile.pods and profile.datasets


@pytest.mark.parametrize("sets, fragment", [
    (["data.max_length=128", "data.doc_stride=125"], "data.doc_stride = 125: must be at most"),
    (["data.synthetic_questions=5"], "data.synthetic_questions = 5: must be an integer in 1 .. 4"),
    (["data.synthetic_templates=distinct", "data.synthetic_questions=17"], "in 1 .. 16"),
    (["torch.nodes=2", "torch.rdzv_endpoint=h:1", "torch.node_rank=2"],
     "torch.node_rank = 2: must be in 0 .. 1"),
    (["torch.nodes=2"], "needs torch.rdzv_endpoint"),
])
def test_cross_field_rules(sets: list[str], fragment: str) -> None:
    with pytest.raises(QABenchError, match=fragment.replace(".", r"\.")):
        apply_overrides(RunConfig(), sets)


def test_the_shipped_profiles_validate() -> None:
    for name in ("smoke", "nightly", "sdk-upgrade", "ipu-emulated"):
        load_profile(name)


# ---------------------------------------------------------------------- the real CLI

def _env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("QA_BENCH_SQUAD_DIR", None)
    return env


@pytest.mark.e2e
@pytest.mark.parametrize("item, fragment", [
    ("train.micro_batch_size=0", "train.micro_batch_size = 0: must be an integer >= 1"),
    ("train.num_train_epochs=-1", "train.num_train_epochs = -1: must be a finite number > 0"),
    ("target.value=101", "target.value = 101: must be a finite number in 0 .. 100"),
    ("postprocess.n_best_size=0", "postprocess.n_best_size = 0: must be an integer >= 1"),
])
def test_cli_refuses_a_bad_set_at_once(item: str, fragment: str, tmp_path: Path) -> None:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "qa.frontends.cli", "run", "--set", item, "--out",
                           str(tmp_path / "out"), "--baselines", str(tmp_path / "b")],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path),
                          timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"qa-bench: error: {fragment}"]
    assert elapsed < 20, f"refused after {elapsed:.1f} s"
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def _digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (paths relative), and every folder (as "dir")."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("args", [
    ["--set", "train.micro_batch_size=0"],
    ["--set", "train.learnig_rate=1"],
    ["--profile", "{tmp}/bad.toml"],
    ["--squad-dir", "{tmp}/no-such-dir"],
    ["--datasets", "squad", "--squad-dir", "{tmp}/work/baselines"],  # no dev file: data stage
    ["--baselines", "{tmp}/work/bad-baselines"],
], ids=["bad-set", "unknown-key", "bad-profile", "no-squad-dir", "squad-dir-without-dev",
        "bad-baseline-file"])
def test_a_refused_run_writes_nothing(args: list[str], tmp_path: Path) -> None:
    from qa.frontends.cli import main

    work = tmp_path / "work"
    (work / "baselines" / "torch" / "cpu").mkdir(parents=True)
    good = REPO / "baselines" / "torch" / "cpu" / "tiny-roformer__synthetic.json"
    (work / "baselines" / "torch" / "cpu" / good.name).write_bytes(good.read_bytes())
    (work / "bad-baselines" / "torch" / "cpu").mkdir(parents=True)
    (work / "bad-baselines" / "torch" / "cpu" / good.name).write_text("{", encoding="utf-8")
    (work / "runs").mkdir()
    (work / "runs" / "history.jsonl").write_text('{"old": 1}\n', encoding="utf-8")
    (tmp_path / "bad.toml").write_text('models = ["tiny-bert"]\npods = ["cpu"]\n'
                                       'datasets = ["synthetic"]\n[defaults.train]\nseed = -1\n',
                                       encoding="utf-8")
    before = _digest(work)
    argv = ["run", "--out", str(work / "runs" / "new"), "--baselines",
            str(work / "baselines"), "--no-progress", "--set", "train.max_steps=1",
            "--set", "data.synthetic_train_contexts=2", "--set",
            "data.synthetic_validation_contexts=1",
            *[a.replace("{tmp}", str(tmp_path)) for a in args]]
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert main(argv) == 2
    finally:
        os.chdir(cwd)
    assert _digest(work) == before  # baselines, history, the --out parent: byte-identical
    assert not (work / "runs" / "new").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("args", [["run", "--list"], ["config", "--profile", "nightly"]])
def test_a_closed_pipe_ends_quietly(args: list[str], tmp_path: Path) -> None:
    """``qa-bench run --list | head -1``: the reader is gone before the output is written."""
    out = ["--out", str(tmp_path / "o")] if args[0] == "run" else []
    proc = subprocess.Popen([sys.executable, "-m", "qa.frontends.cli", *args, *out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=_env(tmp_path))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # what head does once it has its line: every write now fails (EPIPE)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert err == ""
    assert proc.returncode == 141, (proc.returncode, err)
