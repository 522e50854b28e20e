#!/usr/bin/env bash
# Train on several processes with torchrun (one per GPU; on CPU, gloo):
#   bash tools/dist_train.sh CONFIG NPROC [train.py args]
# Several machines: run it on each with NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<host of rank 0>
# and the same PORT (default 29500). PYTHON picks the interpreter. See docs/distributed.md.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG NPROC [train.py args]" >&2; exit 2; }
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
HERE=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$HERE/..:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$HERE/train.py" "$CONFIG" --launcher pytorch "${@:3}"
