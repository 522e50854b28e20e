"""RTMDet-tiny speed on this machine: training step and inference throughput (MMDetection's
rtmdet_tiny model, random weights) and the data pipeline's images per second with RTMDet's
CachedMosaic / RandomResize / RandomCrop / YOLOXHSVRandomAug / RandomFlip / Pad / CachedMixUp
(decoded images in memory: file decoding is measured by benchmark.py's data section).

    python tools/analysis_tools/benchmark.py --model rtmdet-tiny --size 320 --batch 2 --iters 5

The pipeline is not the bottleneck of a run when its images per second per worker, times the
workers, exceed the training step's images per second.
"""
import argparse
import os.path as osp
import random
import time
from typing import Dict

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmft.registry import MODELS, TRANSFORMS
from mmft.structures import BitmapMasks
from tools.analysis_tools.benchmark import (NUM_CLASSES, REPO_ROOT, interleaved, make_scenes,
                                            median, mmft_step_fns)

BASE = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'rtmdet_tiny.py')


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


#: ``--model`` names served here -> the defaults they set
MODELS_SERVED = {'rtmdet-tiny': {}}
DEFAULTS = dict(batch=2, iters=5, warmup=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--size', type=int, default=320, help='square input side (default 320)')
    parser.add_argument('--pipeline-images', type=int, default=40,
                        help='images through the training pipeline (default 40)')


def run(args: argparse.Namespace) -> dict:
    """Training / inference images per second and the pipeline's, as a report."""
    random.seed(0)
    np.random.seed(0)
    device = torch.device(args.device)
    with DefaultScope.overwrite_default_scope('mmft'):
        cfg = Config.fromfile(BASE)
        cfg.model.backbone.init_cfg = None
        cfg.model.bbox_head.num_classes = NUM_CLASSES
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        scenes = make_scenes(args.batch, (args.size, args.size), objects=4)
        train, infer = mmft_step_fns(model, scenes, device, amp=False)
        times = interleaved(dict(train=train, infer=infer), args.iters, args.warmup, device)
        figures: Dict[str, float] = dict(
            train_images_per_s=args.batch / median(times['train']),
            infer_images_per_s=args.batch / median(times['infer']),
            pipeline_images_per_s=pipeline_images_per_second(640, args.pipeline_images, False),
            pipeline_with_masks_images_per_s=pipeline_images_per_second(
                640, args.pipeline_images // 2, True))
    return dict(environment=dict(model='rtmdet_tiny', size=args.size, batch=args.batch,
                                 torch_threads=torch.get_num_threads(), device=args.device),
                results={k: round(v, 2) for k, v in figures.items()})


def format_table(report: dict) -> str:
    env = report['environment']
    lines = [f"rtmdet_tiny {env['size']}x{env['size']}, batch {env['batch']}, "
             f"{env['torch_threads']} threads, {env['device']}"]
    lines += [f'  {k}: {v}' for k, v in report['results'].items()]
    return '\n'.join(lines)
