"""RetinaNet and FCOS (R50-FPN): mmft against torchvision's, at one or more sizes.

    python tools/analysis_tools/benchmark.py --model retinanet|fcos|one-stage
        [--size 512 800x1333] [--batch 2] [--layouts default channels_last] [--threads N]
        [--iters 3] [--warmup 1] [--device cpu|cuda] [--amp] [--no-memory] [--out bench.json]

For each family and size: both detectors have the same random weights (torchvision's,
converted into mmft) and mmft runs with the overrides of docs/model_zoo.md that reproduce
torchvision's model, plus torchvision's fine-tuning settings (frozen BN, stem and layer1
frozen) and its training choices where mmft has them (FCOS: centre sampling, GIoU). mmft is
timed in each of ``--layouts`` (``DetDataPreprocessor.channels_last`` off / on); the
implementations alternate round by round (:func:`benchmark.interleaved`), medians over
``--iters``. Ratios are time ratios mmft / torchvision (lower is better for mmft). Memory is
recorded during the timed rounds: on CUDA the peak allocated above what was held before the
call, on CPU how far the process' peak resident set rose during the call (all
implementations share the process, so the CPU figure is indicative).
"""
import argparse
import json
import os
from typing import Callable, Dict, Tuple

import torch
from mmengine.config import Config
from terminaltables import AsciiTable

from mmft.checkpoint.converters.torchvision import convert_torchvision
from mmft.registry import MODELS
from tools.analysis_tools.benchmark import (REPO_ROOT, _pair, _size, interleaved, make_scenes,
                                            mmft_step_fns, recording_memory,
                                            torchvision_step_fns)

FAMILIES = ('retinanet', 'fcos')
BASE = {'retinanet': 'retinanet_r50_fpn.py', 'fcos': 'fcos_r50-caffe_fpn_gn-head.py'}
TV_SIZES = [[32, 40, 50], [64, 80, 101], [128, 161, 203], [256, 322, 406], [512, 645, 812]]
# random weights score every class ~0.01 (the focal prior): keep every candidate above 0, so
# both sides decode and NMS the full top-k, as on a busy image
SCORE_THR = 0.0
#: mmft's data layouts (``DetDataPreprocessor.channels_last``) -> implementation name
IMPL = {'default': 'mmft', 'channels_last': 'mmft_channels_last'}


def mmft_overrides(family: str) -> dict:
    """MMDetection's base config -> torchvision's model and fine-tuning settings."""
    common = {
        'model.data_preprocessor': dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                                        pad_size_divisor=32),
        'model.backbone': dict(style='pytorch', norm_cfg=dict(type='BN', requires_grad=False),
                               norm_eval=True, frozen_stages=1, init_cfg=None),
        'model.neck': dict(add_extra_convs='on_output', relu_before_extra_convs=True),
    }
    if family == 'retinanet':
        return {**common,
                'model.bbox_head.anchor_generator': dict(
                    _delete_=True, type='AnchorGenerator', ratios=[0.5, 1.0, 2.0],
                    strides=[8, 16, 32, 64, 128], round_base_anchors=True, sizes=TV_SIZES),
                'model.test_cfg': dict(nms_pre=1000, score_thr=SCORE_THR, min_bbox_size=-1,
                                       nms=dict(type='nms', iou_threshold=0.5),
                                       max_per_img=300)}
    return {**common,
            'model.bbox_head': dict(norm_on_bbox=True, centerness_on_reg=True, conv_bias=True,
                                    prior_offset=0., center_sampling=True,
                                    center_sample_radius=1.5,
                                    loss_bbox=dict(type='GIoULoss', loss_weight=1.0)),
            'model.test_cfg': dict(nms_pre=1000, score_thr=SCORE_THR, min_bbox_size=-1,
                                   nms=dict(type='nms', iou_threshold=0.6), max_per_img=100)}


def build_torchvision(family: str, size: Tuple[int, int], device: torch.device
                      ) -> torch.nn.Module:
    """torchvision's RetinaNet / FCOS R50-FPN as its builders make them for fine-tuning
    (FrozenBatchNorm2d, trainable_backbone_layers=3), without loading weights."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FCOS, RetinaNet
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4],
                                     extra_blocks=LastLevelP6P7(256, 256))
    cls = RetinaNet if family == 'retinanet' else FCOS
    # min/max size = the input's sides: the model's own resize is then a no-op scale of 1
    model = cls(backbone, num_classes=91, min_size=min(size), max_size=max(size),
                score_thresh=SCORE_THR)
    return model.to(device)


def build_mmft(family: str, weights: Dict[str, torch.Tensor], device: torch.device
               ) -> torch.nn.Module:
    cfg = Config.fromfile(os.path.join(REPO_ROOT, 'configs', '_base_', 'models', BASE[family]))
    cfg.merge_from_dict(mmft_overrides(family))
    model = MODELS.build(cfg.model)
    model.init_weights()
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith('num_batches_tracked')]
    if missing or result.unexpected_keys:
        raise RuntimeError(f'torchvision {family} weights do not fit mmft: missing {missing[:4]}, '
                           f'unexpected {result.unexpected_keys[:4]}')
    return model.to(device)


def with_layout(model: torch.nn.Module, fn: Callable[[], None], channels_last: bool
                ) -> Callable[[], None]:
    """``fn`` run with mmft's data preprocessor set to the given memory layout."""
    def call() -> None:
        model.data_preprocessor.channels_last = channels_last
        fn()
    return call


def measure(family: str, size: Tuple[int, int], args: argparse.Namespace) -> dict:
    """Train step (batch) and inference (1 image) times and memory of torchvision's model and
    of mmft's in each of ``args.layouts``; memory is recorded during the timed rounds."""
    device = torch.device(args.device)
    scenes = make_scenes(args.batch, size, args.objects)
    tv = build_torchvision(family, size, device)
    mm = build_mmft(family, convert_torchvision(tv.state_dict()).state_dict, device)
    out = {}
    for phase, phase_scenes in (('train_step', scenes), ('inference', scenes[:1])):
        pick = 0 if phase == 'train_step' else 1
        fns = {IMPL[layout]: with_layout(mm, mmft_step_fns(mm, phase_scenes, device,
                                                           args.amp)[pick],
                                         layout == 'channels_last')
               for layout in args.layouts}
        fns['torchvision'] = torchvision_step_fns(tv, phase_scenes, device, args.amp)[pick]
        memory = {impl: [] for impl in fns}
        if not args.no_memory:
            fns = {impl: recording_memory(fn, device, memory[impl]) for impl, fn in fns.items()}
        times = interleaved(fns, args.iters, args.warmup, device)
        for impl in fns:
            if impl != 'torchvision':
                key = phase if impl == 'mmft' else f'{phase}_channels_last'
                out[key] = _pair(times, impl, 'torchvision')
        if not args.no_memory:
            # the largest rise of the timed rounds (warm-up rounds excluded)
            out.setdefault('memory_mb', {})[phase] = {
                impl: max(m[args.warmup:]) for impl, m in memory.items()}
    if not args.no_memory:
        out['memory_mb']['kind'] = ('peak allocated' if device.type == 'cuda'
                                    else 'peak RSS rise')
    return out


#: ``--model`` names served here -> the defaults they set
MODELS_SERVED = {'retinanet': dict(families=['retinanet']), 'fcos': dict(families=['fcos']),
                 'one-stage': dict(families=list(FAMILIES))}
DEFAULTS = dict(iters=3, warmup=1, batch=2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--size', type=_size, nargs='+', default=[(512, 512), (800, 1333)],
                        help='input sizes HxW or one side (default 512 800x1333)')
    parser.add_argument('--families', nargs='+', choices=FAMILIES, default=list(FAMILIES),
                        help=argparse.SUPPRESS)  # set by --model
    parser.add_argument('--layouts', nargs='+', choices=list(IMPL), default=list(IMPL),
                        help="mmft's input memory layouts to time (DetDataPreprocessor."
                             'channels_last; default both)')
    parser.add_argument('--objects', type=int, default=8, help='objects per image (default 8)')
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 CUDA, bf16 CPU)')
    parser.add_argument('--no-memory', action='store_true', help='skip memory')


def run(args: argparse.Namespace) -> dict:
    results = {}
    for size in args.size:
        for family in args.families:
            name = f'{family} {size[0]}x{size[1]}'
            results[name] = measure(family, size, args)
            # one line per model as it finishes: long CPU runs show progress
            print(name, json.dumps(results[name]), flush=True)
    import mmengine
    import torchvision
    env = dict(torch=torch.__version__, torchvision=torchvision.__version__,
               mmengine=mmengine.__version__, threads=torch.get_num_threads(),
               device=args.device, batch=args.batch, objects=args.objects, iters=args.iters,
               warmup=args.warmup, amp=args.amp, cpu_count=os.cpu_count(),
               layouts=args.layouts)
    if args.device == 'cuda':
        env['gpu'] = torch.cuda.get_device_name()
    if hasattr(os, 'getloadavg'):
        env['load_average_after'] = list(os.getloadavg())
        env['load_average_before'] = args.load_average_before
    return dict(environment=env, results=results,
                settings={f: mmft_overrides(f) for f in args.families})


def format_table(report: dict) -> str:
    def ms(v):
        return f'{v * 1000:.1f} ms' if v < 1 else f'{v:.2f} s'

    rows = [['model, size', 'measurement', 'mmft', 'torchvision', 'mmft/tv']]
    for name, r in report['results'].items():
        for what, label in (('train_step', 'train step (batch)'),
                            ('inference', 'inference (1 image)')):
            for suffix, layout in (('', ''), ('_channels_last', ', channels_last')):
                if what + suffix in r:
                    pair = r[what + suffix]
                    rows.append([name, label + layout, ms(pair['mmft']),
                                 ms(pair['torchvision']), f"{pair['ratio']:.2f}"])
        for phase, m in {k: v for k, v in r.get('memory_mb', {}).items()
                         if k != 'kind'}.items():
            for impl in (i for i in IMPL.values() if i in m):
                layout = ', channels_last' if impl != 'mmft' else ''
                rows.append([name, f"{r['memory_mb']['kind']}, {phase.replace('_', ' ')}"
                                   f"{layout}", f"{m[impl]:.0f} MB",
                             f"{m['torchvision']:.0f} MB",
                             f"{m[impl] / m['torchvision']:.2f}" if m['torchvision'] > 0
                             else '-'])
    env = report['environment']
    return AsciiTable(rows, title=f" batch {env['batch']}, {env['threads']} threads, "
                                  f"{env['device']} ").table
