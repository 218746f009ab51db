#!/bin/bash
# Submit the nightly job array and its merge, with the log folder created first and each
# task's --time taken from the suite's cost model. Prints the two job ids.
#
#   examples/slurm/submit-nightly.sh [sbatch options for both jobs, e.g. --partition=ipu]
#
# Settings as in nightly.sbatch (QA_PROFILE, QA_SEEDS, QA_RUNS, QA_RUN_ARGS, QA_BENCH), and
#   QA_SHARDS   array tasks (default: as many as `qa-bench plan` needs for QA_MAX_HOURS)
#   QA_MAX_HOURS  longest a task may be given (default 24)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${QA_RUNS:-runs}"
mkdir -p "$runs/logs"   # Slurm opens --output before the job starts and creates no folder
export QA_RUNS="$runs"
# shards and per-task time limit from the cost model: "N HH:MM:SS" (the longest shard's timeout)
read -r shards limit < <(${QA_BENCH:-qa-bench} plan --profile "${QA_PROFILE:-nightly}" \
  --seeds "${QA_SEEDS:-3}" --max-hours "${QA_MAX_HOURS:-24}" \
  ${QA_SHARDS:+--shards "$QA_SHARDS"} --slurm)
array=$(sbatch --parsable --array="1-$shards" --time="$limit" \
  --output="$runs/logs/%A_%a.log" "$@" "$here/nightly.sbatch")
array="${array%%;*}"
merge=$(sbatch --parsable --dependency="afterany:$array" --export="ALL,QA_ARRAY_JOB=$array" \
  --output="$runs/logs/%j-merge.log" "$@" "$here/merge.sbatch")
merge="${merge%%;*}"
echo "array $array ($shards tasks, --time $limit) merge $merge"
echo "logs: $runs/logs/  runs: $runs/$array/  merged report: $runs/$array/merged/report.md"
