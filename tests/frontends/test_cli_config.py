"""``qa-bench config --profile NAME``: every entry's resolved values and where each came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.frontends.cli import main

PROFILE = """
description = "two models, two datasets: every layer sets something"
backend = "torch"
models = ["tiny-roformer", "tiny-bert"]
pods = ["cpu"]
datasets = ["synthetic", "synthetic_v2"]
seeds = [42, 43]

[defaults.train]
learning_rate = 0.002
micro_batch_size = 4

[model.tiny-bert.train]
learning_rate = 0.003

[dataset.synthetic_v2.data]
version_2 = true
max_length = 256
"""


def _entries(out: str) -> dict[str, dict[str, tuple[str, str]]]:
    """``{entry id: {field: (value, origin)}}`` from the listing."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    current: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = found.setdefault(line[:-1], {})
        elif line.startswith("  ") and " = " in line:
            field, _, rest = line.strip().partition(" = ")
            value, origin = rest.split(None, 1) if " " in rest else (rest, "")
            current[field] = (value, origin.strip())
    return found


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "layers.toml"
    path.write_text(PROFILE, encoding="utf-8")
    return path


def test_every_field_of_every_entry_with_the_layer_it_came_from(
        profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--profile", str(profile), "--set", "train.warmup_ratio=0.2",
                 "--set", "train.micro_batch_size=2"]) == 0
    out = capsys.readouterr().out
    entries = _entries(out)
    assert sorted(entries) == sorted([
        "torch/cpu/tiny-roformer__synthetic", "torch/cpu/tiny-roformer__synthetic_v2",
        "torch/cpu/tiny-bert__synthetic", "torch/cpu/tiny-bert__synthetic_v2"])
    roformer = entries["torch/cpu/tiny-roformer__synthetic"]
    bert_v2 = entries["torch/cpu/tiny-bert__synthetic_v2"]
    assert roformer["train.learning_rate"] == ("0.002", "profile defaults")
    assert bert_v2["train.learning_rate"] == ("0.003", "profile model table")
    assert bert_v2["data.version_2"] == ("true", "profile dataset table")
    assert bert_v2["data.max_length"] == ("256", "profile dataset table")
    assert roformer["data.max_length"] == ("384", "default")
    assert roformer["model.name"] == ('"tiny-roformer"', "matrix")
    assert roformer["torch.device"] == ('"cpu"', "slot")
    assert roformer["train.warmup_ratio"] == ("0.2", "--set")
    # --set wins over the profile's defaults table.
    assert roformer["train.micro_batch_size"] == ("2", "--set")
    assert roformer["train.seed"] == ("42", "default")
    # Every field is listed, with one origin each.
    from qa.config.schema import config_fields

    assert set(roformer) == {name for name, _, _ in config_fields()}
    assert "seeds [42, 43]" in out.splitlines()[0]


def test_the_shipped_smoke_profile_resolves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--profile", "smoke"]) == 0
    smoke = _entries(capsys.readouterr().out)["torch/cpu/tiny-roformer__synthetic"]
    assert smoke["train.num_train_epochs"] == ("4.0", "profile defaults")
    assert smoke["target.value"] == ("80.0", "profile defaults")


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "smok"], "unknown profile 'smok' (did you mean 'smoke'?)"),
    (["--profile", "smoke", "--set", "train.learnig_rate=1"], "did you mean 'learning_rate'"),
    (["--profile", "smoke", "--set", "train.micro_batch_size=0"], "train.micro_batch_size"),
])
def test_a_bad_profile_or_override_exits_2_with_one_line(
        args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("qa-bench: error: "), err
    assert message in err
