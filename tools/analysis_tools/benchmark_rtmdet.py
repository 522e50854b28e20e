"""RTMDet-tiny (or RTMDet-Ins-tiny, ``--model``) speed on this machine: training step and
inference throughput (MMDetection's model, random weights) and the data pipeline's images
per second with RTMDet's CachedMosaic / RandomResize / RandomCrop / YOLOXHSVRandomAug /
RandomFlip / Pad / CachedMixUp
(decoded images in memory: file decoding is measured by benchmark.py's data section).

    python tools/analysis_tools/benchmark_rtmdet.py --size 320 --batch 2 --iters 5
    python tools/analysis_tools/benchmark_rtmdet.py --model rtmdet-ins_tiny

The pipeline is not the bottleneck of a run when its images per second per worker, times the
workers, exceed the training step's images per second.
"""
import argparse
import json
import os
import random
import sys
import time
from typing import Dict

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script: make mmft and benchmark.py importable
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from mmft.registry import MODELS, TRANSFORMS  # noqa: E402
from mmft.structures import BitmapMasks  # noqa: E402
from mmft.utils import register_all_modules  # noqa: E402
from tools.analysis_tools.benchmark import (NUM_CLASSES, interleaved, make_scenes,  # noqa: E402
                                            median, mmft_step_fns)

BASE = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'rtmdet_tiny.py')
#: --model: the base model file measured (RTMDet-Ins trains with the same scenes' masks)
MODEL_FILES = {'rtmdet_tiny': BASE,
               'rtmdet-ins_tiny': os.path.join(REPO_ROOT, 'configs', '_base_', 'models',
                                               'rtmdet-ins_tiny.py')}


def pipeline(img_scale: int) -> list:
    """RTMDet-tiny's training pipeline after loading (MMDetection's values)."""
    s = (img_scale, img_scale)
    return [
        dict(type='CachedMosaic', img_scale=s, pad_val=114.0, max_cached_images=20,
             random_pop=False),
        dict(type='RandomResize', scale=(2 * img_scale, 2 * img_scale), ratio_range=(0.5, 2.0),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=s),
        dict(type='YOLOXHSVRandomAug'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Pad', size=s, pad_val=dict(img=(114, 114, 114))),
        dict(type='CachedMixUp', img_scale=s, ratio_range=(1.0, 1.0), max_cached_images=10,
             random_pop=False, pad_val=(114, 114, 114), prob=0.5),
        dict(type='PackDetInputs')]


def pipeline_images_per_second(img_scale: int, num: int, with_masks: bool) -> float:
    steps = [TRANSFORMS.build(t) for t in pipeline(img_scale)]
    scenes = make_scenes(8, (img_scale * 3 // 4, img_scale), objects=4, seed=1)
    done, start = 0, None
    for i in range(num + 10):
        if i == 10:  # caches full
            start = time.perf_counter()
        s = scenes[i % len(scenes)]
        h, w = s['img'].shape[:2]
        results = dict(img=s['img'].copy(), img_shape=(h, w), ori_shape=(h, w), img_id=i,
                       img_path=f'{i}.png',
                       gt_bboxes=s['boxes'].copy(), gt_bboxes_labels=s['labels'].copy(),
                       gt_ignore_flags=np.zeros(len(s['boxes']), bool))
        if with_masks:
            results['gt_masks'] = BitmapMasks(s['masks'].copy(), h, w)
        for step in steps:
            results = step(results)
            if results is None:
                break
        done += i >= 10
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', choices=sorted(MODEL_FILES), default='rtmdet_tiny')
    parser.add_argument('--size', type=int, default=320, help='square input side')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--pipeline-images', type=int, default=40)
    parser.add_argument('--out', help='write the figures as json here')
    args = parser.parse_args()
    register_all_modules()
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    device = torch.device('cpu')
    with DefaultScope.overwrite_default_scope('mmft'):
        cfg = Config.fromfile(MODEL_FILES[args.model])
        cfg.model.backbone.init_cfg = None
        cfg.model.bbox_head.num_classes = NUM_CLASSES
        model = MODELS.build(cfg.model)
        model.init_weights()
        scenes = make_scenes(args.batch, (args.size, args.size), objects=4)
        train, infer = mmft_step_fns(model, scenes, device, amp=False)
        times = interleaved(dict(train=train, infer=infer), args.iters, 1, device)
        figures: Dict[str, float] = dict(
            train_images_per_s=args.batch / median(times['train']),
            infer_images_per_s=args.batch / median(times['infer']),
            pipeline_images_per_s=pipeline_images_per_second(640, args.pipeline_images, False),
            pipeline_with_masks_images_per_s=pipeline_images_per_second(
                640, args.pipeline_images // 2, True))
    figures = {k: round(v, 2) for k, v in figures.items()}
    print(json.dumps(dict(model=args.model, size=args.size, batch=args.batch,
                          torch_threads=torch.get_num_threads(), **figures), indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(figures, f)


if __name__ == '__main__':
    main()
