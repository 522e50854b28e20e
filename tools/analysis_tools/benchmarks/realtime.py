"""The real-time detectors' speed on this machine (MMDetection's models, random weights):
training-step and inference images per second, and their training pipelines' images per
second against the step, i.e. whether a run with W dataloader workers is pipeline-bound.

    python tools/analysis_tools/benchmark.py --model rtmdet-tiny [--size 320 --batch 2]
    python tools/analysis_tools/benchmark.py --model rtmdet-ins-tiny
    python tools/analysis_tools/benchmark.py --model yolox-s [--l1]
    python tools/analysis_tools/benchmark.py --model pipeline [--pipelines rtmdet-tiny yolox-s]
        [--masks none|bitmap|polygon] [--workers 2] [--images 40]

``rtmdet-tiny`` / ``rtmdet-ins-tiny`` / ``yolox-s`` time the step at ``--size`` and the
model's own pipeline at 640 (the configs' scale; RTMDet-Ins with polygon masks, as its
config loads them). YOLOX's multi-scale batch augment is left out, so that every step runs
at ``--size``; ``--l1`` adds the L1 loss of its last epochs. ``pipeline`` measures each
pipeline (benchmarks/pipeline.py) and the step at ``--size`` (default 640) and says whether
``--workers`` workers keep up: they do when ``workers x`` the pipeline's images per second
exceed the step's.
"""
import argparse
import os.path as osp
import random
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmft.registry import MODELS
from tools.analysis_tools.benchmark import (NUM_CLASSES, REPO_ROOT, interleaved, make_scenes,
                                            median, mmft_step_fns)
from tools.analysis_tools.benchmarks.pipeline import PIPELINES, pipeline_images_per_second

_MODELS_DIR = osp.join(REPO_ROOT, 'configs', '_base_', 'models')
#: model name -> its base file (MMDetection's values)
MODEL_FILES = {'rtmdet-tiny': osp.join(_MODELS_DIR, 'rtmdet_tiny.py'),
               'rtmdet-ins-tiny': osp.join(_MODELS_DIR, 'rtmdet-ins_tiny.py'),
               'yolox-s': osp.join(_MODELS_DIR, 'yolox_s.py')}
#: model name -> (its training pipeline in benchmarks/pipeline.py, the masks it loads)
MODEL_PIPELINES = {'rtmdet-tiny': ('rtmdet-tiny', None),
                   'rtmdet-ins-tiny': ('rtmdet-tiny', 'polygon'),
                   'yolox-s': ('yolox-s', None)}

#: ``--model`` names served here -> the defaults they set
MODELS_SERVED = {'rtmdet-tiny': {}, 'rtmdet-ins-tiny': {}, 'yolox-s': {},
                 'pipeline': dict(size=640, iters=3)}
DEFAULTS = dict(batch=2, iters=5, warmup=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--size', type=int, default=320,
                        help='square input side of the step (default 320; pipeline: 640)')
    parser.add_argument('--images', type=int, default=40,
                        help='pipeline samples timed (default 40)')
    parser.add_argument('--l1', action='store_true', help='yolox-s: with its L1 loss')
    parser.add_argument('--pipelines', nargs='+', choices=sorted(PIPELINES),
                        default=sorted(PIPELINES), help='--model pipeline: which pipelines')
    parser.add_argument('--masks', default='none', choices=('none', 'bitmap', 'polygon'),
                        help='--model pipeline: masks the pipelines carry (default none)')
    parser.add_argument('--workers', type=int, default=2,
                        help='--model pipeline: dataloader workers compared (default 2)')


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.workers < 1 or args.images < 1:
        parser.error(f'--workers ({args.workers}) and --images ({args.images}) must be >= 1')


def build(name: str, device: torch.device, l1: bool = False) -> torch.nn.Module:
    """``name``'s detector from its base file, random weights, ``NUM_CLASSES`` classes."""
    cfg = Config.fromfile(MODEL_FILES[name])
    cfg.model.backbone.init_cfg = None
    cfg.model.bbox_head.num_classes = NUM_CLASSES
    if name == 'yolox-s':  # a fixed size: the multi-scale batch augment is left out
        cfg.model.data_preprocessor.batch_augments = None
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    if l1:
        model.bbox_head.use_l1 = True
    return model


def step_throughput(name: str, size: int, batch: int, iters: int, warmup: int = 1,
                    device: str = 'cpu', l1: bool = False,
                    infer: bool = True) -> Dict[str, float]:
    """Training-step (and, with ``infer``, inference) images per second of ``name``."""
    dev = torch.device(device)
    with DefaultScope.overwrite_default_scope('mmft'):
        model = build(name, dev, l1)
        scenes = make_scenes(batch, (size, size), objects=4)
        train_fn, infer_fn = mmft_step_fns(model, scenes, dev, amp=False)
        fns = dict(train=train_fn, infer=infer_fn) if infer else dict(train=train_fn)
        times = interleaved(fns, iters, warmup, dev)
    out = dict(train_images_per_s=batch / median(times['train']))
    if infer:
        out['infer_images_per_s'] = batch / median(times['infer'])
    return out


def pipeline_vs_step(name: str, workers: int, masks: Optional[str], images: int, size: int,
                     batch: int, iters: int, device: str = 'cpu') -> Dict[str, object]:
    """One pipeline's images per second (one worker), ``workers`` times that, the step's,
    and whether the pipeline is the bottleneck."""
    per_worker = pipeline_images_per_second(name, images, masks, size)
    train = step_throughput(name, size, batch, iters, device=device,
                            infer=False)['train_images_per_s']
    return dict(model=name, img_scale=size, masks=masks or 'none', workers=workers,
                pipeline_images_per_s=round(per_worker, 2),
                loader_images_per_s=round(per_worker * workers, 2),
                train_images_per_s=round(train, 2),
                pipeline_is_bottleneck=per_worker * workers < train)


def run(args: argparse.Namespace) -> dict:
    random.seed(0)
    np.random.seed(0)
    env = dict(model=args.model, size=args.size, batch=args.batch, device=args.device,
               torch_threads=torch.get_num_threads())
    if args.model == 'pipeline':
        masks = None if args.masks == 'none' else args.masks
        results: List[dict] = [
            pipeline_vs_step(name, args.workers, masks, args.images, args.size, args.batch,
                             args.iters, args.device) for name in args.pipelines]
        return dict(environment=env, results=results)
    figures = step_throughput(args.model, args.size, args.batch, args.iters, args.warmup,
                              args.device, args.l1)
    pipeline, masks = MODEL_PIPELINES[args.model]
    figures['pipeline_images_per_s'] = pipeline_images_per_second(pipeline, args.images,
                                                                  masks)
    env['l1'] = args.l1
    return dict(environment=env, results={k: round(v, 2) for k, v in figures.items()})


def format_table(report: dict) -> str:
    env = report['environment']
    lines = [f"{env['model']} {env['size']}x{env['size']}, batch {env['batch']}, "
             f"{env['torch_threads']} threads, {env['device']}"]
    results = report['results']
    if isinstance(results, dict):
        lines += [f'  {k}: {v}' for k, v in results.items()]
    else:
        for row in results:
            lines.append('  ' + ', '.join(f'{k}: {v}' for k, v in row.items()))
    return '\n'.join(lines)
