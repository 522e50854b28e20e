#!/usr/bin/env bash
# What slurm_train.sh and slurm_test.sh share: srun GPUS tasks of one python script.
#   bash tools/slurm_launch.sh PARTITION JOB_NAME SCRIPT [script args]
# GPUS: tasks in all (8); GPUS_PER_NODE: tasks per node (8); CPUS_PER_TASK (5);
# GRES: what each node reserves (gpu:$GPUS_PER_NODE; GRES= for CPU-only partitions, where
# GPUS counts processes); SRUN_ARGS: more srun options; PYTHON: the interpreter.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:$GPUS_PER_NODE}
SRUN_ARGS=${SRUN_ARGS:-}
HERE=$(cd "$(dirname "$0")" && pwd)

# SRUN_ARGS unquoted: it holds several options
PYTHONPATH="$HERE/..:${PYTHONPATH:-}" \
srun -p "$PARTITION" --job-name="$JOB_NAME" ${GRES:+--gres="$GRES"} \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 $SRUN_ARGS \
    "${PYTHON:-python}" -u "${@:3}"
