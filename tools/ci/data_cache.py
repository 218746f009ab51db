"""Check (or fill) the nightly's data and model cache before a shard runs.

    python tools/ci/data_cache.py --profile nightly --pods pod16 --data-dir /data/qa-bench \
        [--provision] [--github-env "$GITHUB_ENV"]

The cache is one folder on the runner (workflow input ``data_dir`` or repository variable
``QA_BENCH_DATA_DIR``): ``squad/`` holds the official SQuAD JSON files (passed as
``--squad-dir``), ``hf/`` is ``HF_HOME`` (the hub models), ``features/`` is ``QA_BENCH_CACHE``
(tokenized features, reused across nights). The shard job runs offline (``HF_HUB_OFFLINE``), so
an entry whose model or data is not there would only be skipped; this check fails the job
first instead, naming every missing file and model (exit 1). ``--provision`` downloads what is
missing (official SQuAD URLs, ``huggingface_hub.snapshot_download``): run it once with network,
e.g. the workflow's ``provision`` input. ``--github-env`` appends ``HF_HOME`` and
``QA_BENCH_CACHE`` for the later steps.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from pathlib import Path

SQUAD_URLS = {
    "train-v1.1.json": "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json",
    "dev-v1.1.json": "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
    "train-v2.0.json": "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json",
    "dev-v2.0.json": "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--pods", help="only these pods (comma-separated)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--provision", action="store_true")
    parser.add_argument("--github-env")
    args = parser.parse_args(argv)
    if not args.data_dir:
        print("::error::no data and model cache named: set the workflow input data_dir or the "
              "repository variable QA_BENCH_DATA_DIR (a folder on the runner with squad/ and hf/)")
        return 2
    data = Path(args.data_dir)
    squad, hf_home, features = data / "squad", data / "hf", data / "features"
    for folder in (squad, hf_home, features):
        folder.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HOME"] = str(hf_home)
    if args.provision:
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "0"

    from qa.run import profiles  # after HF_HOME: huggingface_hub reads it on import
    from qa.run.availability import unavailable
    from qa.run.preflight import split_names
    from qa.task.data import SQUAD_FILES
    from qa.task.models import is_tiny

    profile = profiles.select(profiles.load_profile(args.profile), None, None,
                              split_names(args.pods), None)
    entries = profiles.expand(profile, str(squad))
    files = sorted({name for e in entries for name in SQUAD_FILES.get(e.config.data.dataset, ())})
    models = sorted({e.config.model.name for e in entries} - {
        e.config.model.name for e in entries
        if is_tiny(e.config.model.name) or Path(e.config.model.name).is_dir()})
    if args.provision:
        for name in files:
            if not (squad / name).is_file():
                print(f"data_cache: downloading {SQUAD_URLS[name]}")
                urllib.request.urlretrieve(SQUAD_URLS[name], squad / name)
        from huggingface_hub import snapshot_download
        for model in models:
            print(f"data_cache: downloading model {model}")
            snapshot_download(model)
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    problems = [f"{squad / name}: missing (official SQuAD file)" for name in files
                if not (squad / name).is_file()]
    problems += [f"{e.id}: {why}" for e in entries if (why := unavailable(e.config))]
    if args.github_env:
        with open(args.github_env, "a", encoding="utf-8") as fh:
            fh.write(f"HF_HOME={hf_home}\nQA_BENCH_CACHE={features}\n")
    if problems:
        for line in problems:
            print(f"::error::{line}")
        print(f"data_cache: {len(problems)} problem(s) in {data}; run once with --provision "
              "(workflow input provision) on a runner with network")
        return 1
    print(f"data_cache: {len(entries)} entries ready in {data} ({len(files)} SQuAD files, "
          f"{len(models)} hub models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
