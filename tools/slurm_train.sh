#!/usr/bin/env bash
# Train on a Slurm cluster, one task (process) per GPU, as MMDetection's script:
#   [GPUS=16 GPUS_PER_NODE=8] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR \
#       [train.py args]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, GRES (GRES= on CPU-only partitions), SRUN_ARGS, PYTHON:
# see slurm_launch.sh and docs/distributed.md.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec bash "$HERE/slurm_launch.sh" "$1" "$2" "$HERE/train.py" "$3" --work-dir="$4" \
    --launcher=slurm "${@:5}"
