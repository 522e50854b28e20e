"""SSD300 against torchvision's ``ssd300_vgg16``, and YOLOv3 / SSDLite throughput.

    python tools/analysis_tools/benchmark.py --model NAME [--batch 8] [--iters 5] [--warmup 1]
        [--threads N] [--device cpu|cuda] [--out bench.json]

SSD300: both models hold the same random weights (torchvision's, converted into mmft with
the overrides of docs/model_zoo.md) and see the same 300x300 images and boxes; training
steps use SGD with lr=0, so every round does the same work. mmft (in the default layout and
with ``DetDataPreprocessor.channels_last``) and torchvision are timed alternately round after
round with :func:`benchmark.interleaved` (medians over ``--iters`` rounds); the ratio is
mmft's time over torchvision's (lower is better for mmft; the goal is <= 0.8). YOLOv3
(Darknet-53 at 608 and MobileNetV2 at 416) and SSDLite (320) have no torchvision
counterpart: their images per second are reported.
"""
import argparse
import copy
import os
import os.path as osp
from typing import Callable, Dict, Sequence

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from mmft.checkpoint.converters import convert_torchvision
from mmft.registry import MODELS
from tools.analysis_tools.benchmark import (REPO_ROOT, interleaved, make_scenes, median,
                                            mmft_batch, torchvision_batch)

SSD300_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'ssd300.py')
YOLOV3_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'yolov3_d53.py')
#: what makes mmft's SSD300 compute torchvision's (docs/model_zoo.md)
TORCHVISION_OVERRIDES = {
    'model.backbone.init_cfg': None,
    'model.data_preprocessor.mean': [122.99925, 116.9991, 103.9992],
    'model.data_preprocessor.std': [1, 1, 1],
    'model.bbox_head.anchor_generator.clip_to_input': True,
    'model.test_cfg.score_thr': 0.01,
    'model.test_cfg.min_bbox_size': -1,
}
SSDLITE = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=1),
    backbone=dict(type='MobileNetV2', out_indices=(4, 7),
                  norm_cfg=dict(type='BN', eps=0.001, momentum=0.03)),
    neck=dict(type='SSDNeck', in_channels=(96, 1280), out_channels=(96, 1280, 512, 256, 256, 128),
              level_strides=(2, 2, 2, 2), level_paddings=(1, 1, 1, 1), l2_norm_scale=None,
              use_depthwise=True, norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
              act_cfg=dict(type='ReLU6')),
    bbox_head=dict(type='SSDHead', in_channels=(96, 1280, 512, 256, 256, 128), num_classes=80,
                   use_depthwise=True, norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
                   act_cfg=dict(type='ReLU6'),
                   anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False,
                                         strides=[16, 32, 64, 107, 160, 320],
                                         ratios=[[2, 3]] * 6,
                                         min_sizes=[48, 100, 150, 202, 253, 304],
                                         max_sizes=[100, 150, 202, 253, 304, 320]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                 min_pos_iou=0., ignore_iof_thr=-1, gt_max_assign_all=False),
                   sampler=dict(type='PseudoSampler'), smoothl1_beta=1., allowed_border=-1,
                   pos_weight=-1, neg_pos_ratio=3, debug=False),
    test_cfg=dict(nms_pre=1000, nms=dict(type='nms', iou_threshold=0.45), min_bbox_size=0,
                  score_thr=0.02, max_per_img=200))
SIZES = {'ssd300': 300, 'yolov3': 608, 'yolov3_mobilenetv2': 416, 'ssdlite': 320}


def _build(cfg: dict, device: torch.device) -> torch.nn.Module:
    with DefaultScope.overwrite_default_scope('mmft'):
        return MODELS.build(cfg).to(device)


def model_cfg(name: str) -> dict:
    """The benchmarked model's config (MMDetection's values; SSD300 with the overrides)."""
    if name == 'ssd300':
        cfg = Config.fromfile(SSD300_CONFIG)
        cfg.merge_from_dict(TORCHVISION_OVERRIDES)
        return cfg.model.to_dict()
    if name == 'ssdlite':
        return copy.deepcopy(SSDLITE)
    cfg = Config.fromfile(YOLOV3_CONFIG)
    cfg.model.backbone.init_cfg = None
    if name == 'yolov3_mobilenetv2':
        cfg.model.backbone = dict(type='MobileNetV2', out_indices=(2, 4, 6),
                                  act_cfg=dict(type='LeakyReLU', negative_slope=0.1))
        cfg.merge_from_dict({
            'model.data_preprocessor.mean': [123.675, 116.28, 103.53],
            'model.data_preprocessor.std': [58.395, 57.12, 57.375],
            'model.neck.in_channels': [320, 96, 32], 'model.neck.out_channels': [96, 96, 96],
            'model.bbox_head.in_channels': [96, 96, 96],
            'model.bbox_head.out_channels': [96, 96, 96]})
    return cfg.model.to_dict()


def mmft_fns(model: torch.nn.Module, scenes: Sequence[dict], channels_last: bool = False
             ) -> Dict[str, Callable[[], None]]:
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))

    def train() -> None:
        model.data_preprocessor.channels_last = channels_last
        model.train()
        model.train_step(mmft_batch(scenes, with_gt=True), optim)

    def infer() -> None:
        model.data_preprocessor.channels_last = channels_last
        model.eval()
        with torch.no_grad():
            model.test_step(mmft_batch(scenes, with_gt=False))
    return dict(train=train, infer=infer)


def torchvision_fns(model: torch.nn.Module, scenes: Sequence[dict], device: torch.device
                    ) -> Dict[str, Callable[[], None]]:
    optim = torch.optim.SGD(model.parameters(), lr=0.0)

    def train() -> None:
        model.train()
        images, targets = torchvision_batch(scenes, device)
        for t in targets:
            t.pop('masks')
        loss = sum(model(images, targets).values())
        optim.zero_grad()
        loss.backward()
        optim.step()

    def infer() -> None:
        model.eval()
        with torch.no_grad():
            model(torchvision_batch(scenes, device)[0])
    return dict(train=train, infer=infer)


#: ``--model`` names served here -> the defaults they set
MODELS_SERVED = {'ssd300': dict(models=['ssd300']), 'ssdlite': dict(models=['ssdlite']),
                 'yolov3': dict(models=['yolov3']),
                 'yolov3-mobilenetv2': dict(models=['yolov3_mobilenetv2']),
                 'ssd-yolov3': dict(models=list(SIZES))}
DEFAULTS = dict(batch=8, iters=5, warmup=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--models', nargs='+', default=list(SIZES), choices=list(SIZES),
                        help=argparse.SUPPRESS)  # set by --model


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    results: Dict[str, dict] = {}
    for name in args.models:
        size = SIZES[name]
        scenes = make_scenes(args.batch, (size, size), objects=4)
        model = _build(model_cfg(name), device)
        if name == 'ssd300':
            import torchvision
            tv = torchvision.models.detection.ssd300_vgg16(weights=None,
                                                           weights_backbone=None).to(device)
            model.load_state_dict(convert_torchvision(tv.state_dict()).state_dict)
            ours, theirs = mmft_fns(model, scenes), torchvision_fns(tv, scenes, device)
            nhwc = mmft_fns(model, scenes, channels_last=True)
            for phase in ('train', 'infer'):
                times = interleaved({'mmft': ours[phase], 'mmft_channels_last': nhwc[phase],
                                     'torchvision': theirs[phase]},
                                    args.iters, args.warmup, device)
                tvt = median(times['torchvision'])
                for impl, key in (('mmft', f'ssd300_{phase}'),
                                  ('mmft_channels_last', f'ssd300_{phase}_channels_last')):
                    mm = median(times[impl])
                    results[key] = dict(mmft=mm, torchvision=tvt, ratio=mm / tvt)
                    print(f'{key}: {results[key]}', flush=True)
        else:
            fns = mmft_fns(model, scenes)
            for phase in ('train', 'infer'):
                t = median(interleaved({phase: fns[phase]}, args.iters, args.warmup,
                                       device)[phase])
                results[f'{name}_{phase}'] = dict(mmft=t, images_per_s=args.batch / t)
                print(f'{name}_{phase}: {results[f"{name}_{phase}"]}', flush=True)
        del model
    env = dict(device=args.device, threads=torch.get_num_threads(), batch=args.batch,
               iters=args.iters, warmup=args.warmup, torch=torch.__version__,
               load_average_before=getattr(args, 'load_average_before', None))
    if hasattr(os, 'getloadavg'):  # others' load on the machine: how noisy were the rounds
        env['load_average_after'] = list(os.getloadavg())
    return dict(environment=env,
                results=results)


def format_table(report: dict) -> str:
    lines = ['| model, phase | mmft s/batch | torchvision s/batch | ratio | images/s (mmft) |',
             '|---|---|---|---|---|']
    for key, r in report['results'].items():
        images = report['environment']['batch'] / r['mmft']
        tv = f"{r['torchvision']:.3f}" if 'torchvision' in r else '-'
        ratio = f"{r['ratio']:.2f}" if 'ratio' in r else '-'
        lines.append(f"| {key} | {r['mmft']:.3f} | {tv} | {ratio} | {images:.1f} |")
    return '\n'.join(lines)
