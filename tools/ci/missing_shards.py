"""Name every shard job of the plan that delivered no run folder (before the merge).

    python tools/ci/missing_shards.py "$MATRIX" runs

``MATRIX`` is the plan job's output (``qa-bench plan --per-pod --json``); ``runs`` is where the
shard artifacts were downloaded (``runs/shard-<pod>-<k>/run``). A shard with no folder never
ran: no runner with its label ``ipu-<pod>`` picked the job up before GitHub's queue limit
(24 h, up to 48 h), or it failed before its first step that writes. Each is an error annotation
and a line of the job summary; the merge (``--profile``) then reports its entries missing and
exits 1. Exit 0 here: the merge gives the verdict.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    matrix, runs = json.loads(argv[0]), Path(argv[1])
    lost = [job for job in matrix["include"]
            if not (runs / f"shard-{job['pod']}-{job['shard']}" / "run"
                    / "manifest.json").is_file()]
    lines = [f"shard {job['pod']} {job['shard']}/{job['shards']} delivered nothing (label "
             f"ipu-{job['pod']}, {job['entries']} entries, limit {job['timeout_minutes']} min): "
             "no runner picked it up, or it failed before running" for job in lost]
    for line in lines:
        print(f"::error::{line}")
    print(f"{len(matrix['include']) - len(lost)} of {len(matrix['include'])} shard jobs "
          "delivered a run folder")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and lines:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write("### Shards that delivered nothing\n\n" + "".join(f"- {x}\n" for x in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
