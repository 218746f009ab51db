"""Data loading: SQuAD-layout data from the hub, from official JSON files, or synthetic.

Every path ends in a ``datasets.DatasetDict`` with ``train`` and ``validation`` splits whose
columns are the hub layout: id, title, context, question, answers {text, answer_start}.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from qa.config.schema import DataConfig
from qa.errors import HubUnreachableError, QABenchError
from qa.files import write_json_atomic
from qa.task import synthetic
from qa.task.squad_file import read_squad_file

# Local file names of the official releases, by dataset name.
SQUAD_FILES = {
    "squad": ("train-v1.1.json", "dev-v1.1.json"),
    "squad_v2": ("train-v2.0.json", "dev-v2.0.json"),
}
SYNTHETIC = {"synthetic": 0.0, "synthetic_v2": 0.33}
# Share of a dev file's articles used for training when no train file is present locally.
DEV_SPLIT_TRAIN_SHARE = 0.8


def read_squad_json(path: str | os.PathLike, version_2: bool | None = None) -> list[dict[str, Any]]:
    """Read and validate an official-layout SQuAD JSON file into flat records for training.

    The one SQuAD validator (``qa.task.squad_file``) in its strict mode: what training needs (a
    context, a question, unique ids, each answer at its answer_start) is an error when absent.

    Raises:
        QABenchError: unreadable, not UTF-8, not JSON, not SQuAD layout, empty context or
            question, duplicate or missing ids, or an answer not found at its answer_start.
    """
    return read_squad_file(path, version_2, strict=True).records


def records_to_dataset(records: list[dict[str, Any]]) -> Any:
    """Flat records → ``datasets.Dataset`` with the hub's SQuAD features."""
    from datasets import Dataset, Features, Sequence, Value

    features = Features({
        "id": Value("string"), "title": Value("string"), "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": Sequence(Value("string")), "answer_start": Sequence(Value("int32"))},
    })
    columns = {key: [r[key] for r in records] for key in features}
    return Dataset.from_dict(columns, features=features)


def file_fingerprint(*paths: str | os.PathLike) -> str:
    """sha256 over the bytes of the given files."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def dataset_fingerprint(config: DataConfig, source_hash: str) -> str:
    """Hash of the data files and the preprocessing settings: equal ⇔ same features."""
    settings = json.dumps(
        {"source": source_hash, "max_length": config.max_length, "doc_stride": config.doc_stride,
         "max_train_samples": config.max_train_samples,
         "max_eval_samples": config.max_eval_samples},
        sort_keys=True,
    )
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def synthetic_files(config: DataConfig, cache_dir: Path) -> tuple[Path, Path]:
    """Write (or reuse) the synthetic train/validation JSON files for ``config``."""

    fraction = SYNTHETIC[config.dataset]
    tag = (f"{config.dataset}-s{config.synthetic_seed}-"
           f"{config.synthetic_train_contexts}-{config.synthetic_validation_contexts}-"
           f"l{config.synthetic_long_fraction}-d{config.synthetic_distractor_subjects}-"
           f"{config.synthetic_templates}-q{config.synthetic_questions}-"
           f"g{synthetic.GENERATOR_VERSION}-"
           # The generator's own source too: an edit without a version bump regenerates.
           f"{file_fingerprint(synthetic.__file__)[:8]}")
    folder = cache_dir / "synthetic" / tag
    paths = []
    for split, n in (("train", config.synthetic_train_contexts),
                     ("validation", config.synthetic_validation_contexts)):
        path = folder / f"{split}.json"
        if not path.exists():
            write_json_atomic(path, synthetic.generate_squad(
                n, config.synthetic_seed, fraction, split=split,
                long_fraction=config.synthetic_long_fraction,
                distractor_subjects=config.synthetic_distractor_subjects,
                templates=config.synthetic_templates,
                questions_per_context=config.synthetic_questions))
        paths.append(path)
    return paths[0], paths[1]


def load(config: DataConfig, cache_dir: Path) -> tuple[Any, str]:
    """Load the train and validation splits described by ``config``.

    Returns:
        ``(DatasetDict, fingerprint)``; the fingerprint hashes the source data and settings.

    Raises:
        QABenchError: bad files or names; HubUnreachableError when a hub name cannot be fetched.
    """
    from datasets import DatasetDict

    version_2 = config.version_2 or config.dataset in ("squad_v2", "synthetic_v2")
    if config.train_file or config.validation_file:
        if not (config.train_file and config.validation_file):
            raise QABenchError("data.train_file and data.validation_file must be given together")
        train_path, val_path = Path(config.train_file), Path(config.validation_file)
    elif config.dataset in SYNTHETIC:
        train_path, val_path = synthetic_files(config, cache_dir)
    elif config.dataset in SQUAD_FILES and config.squad_dir:
        return _load_local_squad(config, Path(config.squad_dir), version_2)
    else:
        return _load_hub(config)
    splits = DatasetDict(
        train=records_to_dataset(read_squad_json(train_path, version_2)),
        validation=records_to_dataset(read_squad_json(val_path, version_2)),
    )
    return _limit(splits, config), dataset_fingerprint(config, file_fingerprint(train_path,
                                                                                 val_path))


def _load_local_squad(config: DataConfig, folder: Path, version_2: bool) -> tuple[Any, str]:
    from datasets import DatasetDict

    train_name, dev_name = SQUAD_FILES[config.dataset]
    dev = folder / dev_name
    if not dev.exists():
        raise QABenchError(f"{dev} not found (squad_dir must hold the official {dev_name})")
    records = read_squad_json(dev, version_2)
    if (folder / train_name).exists():
        train = read_squad_json(folder / train_name, version_2)
        source = file_fingerprint(folder / train_name, dev)
    else:
        # Only the dev set is available offline: split it by article so that no context is in
        # both splits; recorded in the fingerprint so such runs never compare with full ones.
        titles = list(dict.fromkeys(r["title"] for r in records))
        train_titles = set(titles[: int(len(titles) * DEV_SPLIT_TRAIN_SHARE)])
        train = [r for r in records if r["title"] in train_titles]
        records = [r for r in records if r["title"] not in train_titles]
        if not train or not records:
            raise QABenchError(f"{dev} has {len(titles)} distinct article title(s): too few to "
                               f"split into train and validation without {train_name}")
        warnings.warn(f"{train_name} not in {folder}: training on {len(train_titles)} of "
                      f"{len(titles)} dev articles, evaluating on the rest", stacklevel=2)
        source = file_fingerprint(dev) + "-dev-split"
    splits = DatasetDict(train=records_to_dataset(train), validation=records_to_dataset(records))
    return _limit(splits, config), dataset_fingerprint(config, source)


def _load_hub(config: DataConfig) -> tuple[Any, str]:
    import datasets

    try:
        loaded = datasets.load_dataset(config.dataset)
    except FileNotFoundError:
        raise QABenchError(f"unknown dataset {config.dataset!r}: not a built-in name "
                           f"({', '.join([*SYNTHETIC, *SQUAD_FILES])}) nor on the hub") from None
    except (ConnectionError, OSError) as exc:
        raise HubUnreachableError(
            f"cannot fetch dataset {config.dataset!r} from the hub ({type(exc).__name__}); "
            "point --squad-dir / $QA_BENCH_SQUAD_DIR at the official JSON files, or set "
            "data.train_file and data.validation_file"
        ) from None
    if "train" not in loaded or "validation" not in loaded:
        raise QABenchError(f"dataset {config.dataset!r} lacks train/validation splits")
    fingerprint = loaded["train"]._fingerprint + loaded["validation"]._fingerprint
    return _limit(loaded, config), dataset_fingerprint(config, fingerprint)


def _limit(splits: Any, config: DataConfig) -> Any:
    if config.max_train_samples:
        splits["train"] = splits["train"].select(
            range(min(config.max_train_samples, len(splits["train"]))))
    if config.max_eval_samples:
        splits["validation"] = splits["validation"].select(
            range(min(config.max_eval_samples, len(splits["validation"]))))
    return splits
