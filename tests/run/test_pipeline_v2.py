"""End to end, SQuAD v2 style: a v2 entry records evaluate-v2.0.py's best-threshold numbers.

The tiny model on synthetic v2 data (some questions unanswerable), a few steps: the answers'
null odds serve as the no-answer probabilities, so the result holds ``best_exact``,
``best_f1`` and their thresholds beside the (unchanged) gated scores, and the report shows them.
"""

from __future__ import annotations

import pytest

from qa.config.schema import RunConfig, apply_overrides
from qa.reporting.report import render_markdown
from qa.run.pipeline import run_entry

pytestmark = pytest.mark.e2e  # trains

V2 = ["data.dataset=synthetic_v2", "data.synthetic_train_contexts=40",
      "data.synthetic_validation_contexts=20", "data.max_length=128", "data.doc_stride=64",
      "model.vocab_size=2000", "train.max_steps=5", "train.micro_batch_size=8",
      "train.compile_eval=false", "torch.device=cpu", "target.every=0"]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    config = apply_overrides(RunConfig(), V2)
    return run_entry(config, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_a_v2_entry_records_the_best_thresholds(result) -> None:
    assert result.status == "ok", result.failure
    metrics = result.metrics
    assert metrics["NoAns_total"] > 0 and metrics["HasAns_total"] > 0
    # The search starts from "no answer" everywhere: every unanswerable question right.
    floor = 100.0 * metrics["NoAns_total"] / metrics["total"]
    for name in ("exact", "f1"):
        assert floor <= metrics[f"best_{name}"] <= 100.0
        assert metrics[f"best_{name}"] >= metrics[name] - 1e-9  # answering as postprocessed
        assert isinstance(metrics[f"best_{name}_thresh"], float)
    assert metrics["exact_match"] == metrics["exact"]


def test_the_report_shows_them(result) -> None:
    report = render_markdown([result], [])
    section = report.split("## SQuAD v2.0 no-answer", 1)[1].split("\n## ", 1)[0]
    assert f"{result.metrics['best_f1']:.2f}" in section
    assert "never gated" in section
