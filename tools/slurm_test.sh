#!/usr/bin/env bash
# Evaluate on a Slurm cluster, one task per GPU; every task's results are gathered:
#   [GPUS=8] bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, GRES (GRES= on CPU-only partitions), SRUN_ARGS, PYTHON:
# see slurm_launch.sh and docs/distributed.md.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PARTITION JOB_NAME CONFIG CKPT [test.py args]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec bash "$HERE/slurm_launch.sh" "$1" "$2" "$HERE/test.py" "$3" "$4" --launcher=slurm "${@:5}"
