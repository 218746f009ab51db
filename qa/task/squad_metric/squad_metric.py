"""An `evaluate` metric module for SQuAD v1.1 / v2.0 that delegates to `qa.task.metrics`.

Load it with `qa.task.metrics.load_evaluate_metric(version_2=...)`, or with
`evaluate.load(<path to this file>, version_2=...)`. It needs no network.
The scoring lives in `qa.task.metrics.compute_squad`, so results equal the official scripts.

`evaluate` copies this file into its module cache and scans its import lines for
dependencies: keep one plain import per line and no relative imports.
"""

import datasets
import evaluate

from qa.errors import QABenchError
from qa.task.metrics import compute_squad

_DESCRIPTION = (
    "Exact match and token F1 of predicted answers against SQuAD gold answers, computed "
    "exactly as the official evaluate-v1.1.py / evaluate-v2.0.py scripts (qa-bench)."
)

_CITATION = (
    "Rajpurkar et al., SQuAD: 100,000+ Questions for Machine Comprehension of Text (2016); "
    "Rajpurkar, Jia and Liang, Know What You Don't Know: Unanswerable Questions for SQuAD (2018)."
)

_INPUTS = (
    "\nArgs:\n"
    "    predictions: list of {'id': str, 'prediction_text': str}; with version_2 a\n"
    "        'no_answer_probability' may be given too, and is ignored: the text decides\n"
    "        (an empty string means no answer).\n"
    "    references: list of {'id': str, 'answers': {'text': [str], 'answer_start': [int]}};\n"
    "        with version_2 an empty 'text' list marks an unanswerable question.\n"
    "Returns:\n"
    "    v1.1: {'exact_match', 'f1'}; v2.0: {'exact', 'f1', 'total'} plus HasAns_* / NoAns_*.\n"
)

_CONFIGS = ("v1.1", "v2.0")
_DROPPED = "no_answer_probability"


def _drop_probability(prediction):
    """Drop ``no_answer_probability`` (HF squad_v2 style), which the schema does not hold."""
    if isinstance(prediction, dict) and _DROPPED in prediction:
        return {key: value for key, value in prediction.items() if key != _DROPPED}
    return prediction


def _features() -> datasets.Features:
    """Input schema, the same for v1.1 and v2.0."""
    prediction = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
    answers = {
        "text": datasets.Sequence(datasets.Value("string")),
        "answer_start": datasets.Sequence(datasets.Value("int32")),
    }
    reference = {"id": datasets.Value("string"), "answers": answers}
    return datasets.Features({"predictions": prediction, "references": reference})


class SquadMetric(evaluate.Metric):
    """SQuAD EM/F1; config ``"v1.1"`` (default) or ``"v2.0"`` (also set by ``version_2=True``)."""

    def __init__(self, config_name: str | None = None, version_2: bool = False, **kwargs):
        if config_name not in (None, "default", *_CONFIGS):
            raise QABenchError(f"unknown squad_metric config {config_name!r} (choose v1.1 or v2.0)")
        self.version_2 = version_2 or config_name == "v2.0"
        super().__init__(config_name="v2.0" if self.version_2 else "v1.1", **kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=_features(),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    # `evaluate` rejects keys that are not in the schema, so the optional probability is
    # removed before it gets there: both the HF squad and squad_v2 input styles are accepted.
    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references."""
        if predictions is not None:
            predictions = [_drop_probability(p) for p in predictions]
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction and its reference."""
        prediction = _drop_probability(prediction)
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references):
        answers = {p["id"]: p["prediction_text"] for p in predictions}
        return compute_squad(answers, references, version_2=self.version_2)
