"""YOLOX-s speed on this machine: training step and inference throughput (MMDetection's
yolox_s model, random weights, the L1 loss on as in its last epochs when ``--l1``).

    python tools/analysis_tools/benchmark_yolox.py --size 320 --batch 2 --iters 5

The multi-scale batch augment is left out so every step runs at ``--size``; the data
pipeline's throughput with Mosaic / MixUp is benchmark_rtmdet.py's (the same cached
transforms).
"""
import argparse
import json
import os
import random
import sys
from typing import Dict

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script: make mmft and benchmark.py importable
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from mmft.registry import MODELS  # noqa: E402
from mmft.utils import register_all_modules  # noqa: E402
from tools.analysis_tools.benchmark import (NUM_CLASSES, interleaved, make_scenes,  # noqa: E402
                                            median, mmft_step_fns)

BASE = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'yolox_s.py')


def yolox_throughput(size: int, batch: int, iters: int, l1: bool = False) -> Dict[str, float]:
    """Images per second of a YOLOX-s training step (SGD) and of inference at ``size``."""
    device = torch.device('cpu')
    with DefaultScope.overwrite_default_scope('mmft'):
        cfg = Config.fromfile(BASE)
        cfg.model.data_preprocessor.batch_augments = None
        cfg.model.bbox_head.num_classes = NUM_CLASSES
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.bbox_head.use_l1 = l1
        scenes = make_scenes(batch, (size, size), objects=4)
        train, infer = mmft_step_fns(model, scenes, device, amp=False)
        times = interleaved(dict(train=train, infer=infer), iters, 1, device)
    return dict(train_images_per_s=batch / median(times['train']),
                infer_images_per_s=batch / median(times['infer']))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=320, help='square input side')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--l1', action='store_true', help='with the L1 loss (last epochs)')
    parser.add_argument('--out', help='write the figures as json here')
    args = parser.parse_args()
    register_all_modules()
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    figures = yolox_throughput(args.size, args.batch, args.iters, args.l1)
    figures = {k: round(v, 2) for k, v in figures.items()}
    print(json.dumps(dict(model='yolox_s', size=args.size, batch=args.batch, l1=args.l1,
                          torch_threads=torch.get_num_threads(), **figures), indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(figures, f)


if __name__ == '__main__':
    main()
