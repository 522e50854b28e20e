"""Time Mask R-CNN with other backbones against the ResNet-50 one, on one machine in one run.

    python tools/analysis_tools/benchmark.py --model backbones [--size 512] [--batch 2]
        [--backbones r50 swin-t x101-32x4d regnetx-3.2gf hrnetv2p-w18 r50-dcn]
        [--threads N] [--iters 5] [--warmup 1] [--device cpu|cuda] [--out bench.json]

Each detector is built from mmft's base config of that backbone (MMDetection's values,
random weights: ``init_cfg=None``) and trained with SGD at lr=0 on the same synthetic
batch, so every round does the same work; the steps alternate round after round
(benchmark.py's :func:`interleaved`) and each time is the median over ``--iters`` rounds.
``ratio`` is a time ratio against ``r50`` (lower is faster). Frozen stages and norm_eval are
the configs' (ResNets: stem and stage 1 frozen, BN in eval; Swin: nothing frozen).
"""
import argparse
import os.path as osp
from typing import Dict

import torch
from mmengine.config import Config
from terminaltables import AsciiTable

from mmft.registry import MODELS
from tools.analysis_tools.benchmark import (REPO_ROOT, _size, interleaved, make_scenes, median,
                                            mmft_step_fns)

MODELS_DIR = osp.join(REPO_ROOT, 'configs', '_base_', 'models')
#: name -> base model config (all Mask R-CNN but HRNet's, which MMDetection pairs with
#: Faster R-CNN in its base file)
BACKBONES = {
    'r50': 'mask_rcnn_r50_fpn.py',
    'swin-t': 'mask_rcnn_swin-t-p4-w7_fpn.py',
    'x101-32x4d': 'mask_rcnn_x101-32x4d_fpn.py',
    'regnetx-3.2gf': 'mask_rcnn_regnetx-3.2gf_fpn.py',
    'r50-dcn': 'mask_rcnn_r50-dconv-c3-c5_fpn.py',
    'hrnetv2p-w18': 'faster_rcnn_hrnetv2p-w18_hrfpn.py',
}


def build(name: str, device: torch.device) -> torch.nn.Module:
    """The detector of ``name`` with random weights (no download)."""
    cfg = Config.fromfile(osp.join(MODELS_DIR, BACKBONES[name]))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device)


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    scenes = make_scenes(args.batch, args.size, args.objects)
    train_fns, infer_fns, params = {}, {}, {}
    for name in args.backbones:
        model = build(name, device)
        train_fns[name], infer_fns[name] = mmft_step_fns(model, scenes, device, amp=False)
        params[name] = sum(p.numel() for p in model.backbone.parameters())
    results: Dict[str, dict] = {}
    for phase, fns in (('train_step', train_fns), ('inference', infer_fns)):
        times = interleaved(fns, args.iters, args.warmup, device)
        base = median(times['r50'])
        results[phase] = {name: dict(seconds=median(t), ratio=median(t) / base)
                          for name, t in times.items()}
    env = dict(size=list(args.size), batch=args.batch, objects=args.objects,
               device=args.device, threads=torch.get_num_threads(), iters=args.iters,
               torch=torch.__version__,
               cuda=torch.cuda.get_device_name() if device.type == 'cuda' else None)
    return dict(environment=env, backbone_params=params, results=results)


def format_table(report: dict) -> str:
    rows = [['backbone', 'params (M)', 'train step (s)', 'x r50', 'inference (s)', 'x r50']]
    train, infer = report['results']['train_step'], report['results']['inference']
    for name in train:
        rows.append([name, f"{report['backbone_params'][name] / 1e6:.1f}",
                     f"{train[name]['seconds']:.3f}", f"{train[name]['ratio']:.2f}",
                     f"{infer[name]['seconds']:.3f}", f"{infer[name]['ratio']:.2f}"])
    env = report['environment']
    title = (f" {env['device']} {env['size'][0]}x{env['size'][1]} batch {env['batch']}, "
             f"{env['threads']} threads ")
    return AsciiTable(rows, title).table


#: ``--model`` names served here -> the defaults they set
MODELS_SERVED = {'backbones': {}}
DEFAULTS = dict(batch=2, iters=5, warmup=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--size', type=_size, default=(512, 512),
                        help='input HxW, or one side for a square (default 512)')
    parser.add_argument('--objects', type=int, default=8, help='objects per image (default 8)')
    parser.add_argument('--backbones', nargs='+', default=['r50', 'swin-t'],
                        choices=sorted(BACKBONES), help='default: r50 swin-t')


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if 'r50' not in args.backbones:
        args.backbones = ['r50'] + list(args.backbones)  # the reference of every ratio
