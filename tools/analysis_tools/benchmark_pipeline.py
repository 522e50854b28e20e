"""Is the data pipeline the bottleneck? Images per second of MMDetection's RTMDet-tiny and
YOLOX-s training pipelines (Mosaic / MixUp / RandomAffine ..., at the configs' 640 scale),
against the model's training step.

    python tools/analysis_tools/benchmark_pipeline.py --model rtmdet_tiny yolox_s \
        [--masks none|bitmap|polygon] [--workers 2] [--batch 2] [--iters 3] [--out f.json]

The pipelines run on generated images (``benchmark.make_scenes``: 480x640, 8 filled
ellipses with boxes and masks, decoded in memory: file decoding is benchmark.py's data
section) from the point where LoadAnnotations has run; YOLOX's goes through
``MultiImageMixDataset`` as its config does. A run with ``W`` dataloader workers is
pipeline-bound when ``W`` times the pipeline's images per second (one worker each) is
below the training step's images per second. The training step is timed when the model's
base config (configs/_base_/models/NAME.py) and types are in this checkout.

For benchmark.py: :func:`measure` returns the figures of one model.
"""
import argparse
import json
import os
import os.path as osp
import random
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script: make mmft and benchmark.py importable
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.dataset import BaseDataset  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from mmft.datasets import MultiImageMixDataset  # noqa: E402
from mmft.registry import MODELS, TRANSFORMS  # noqa: E402
from mmft.structures import BitmapMasks, PolygonMasks  # noqa: E402
from mmft.utils import register_all_modules  # noqa: E402
from tools.analysis_tools.benchmark import (NUM_CLASSES, interleaved, make_scenes,  # noqa: E402
                                            median, mmft_step_fns)
from tools.analysis_tools.benchmark_rtmdet import pipeline as rtmdet_pipeline  # noqa: E402

MODELS_MEASURED = ('rtmdet_tiny', 'yolox_s')
SCENE_SHAPE = (480, 640)
OBJECTS = 8


def yolox_pipeline(img_scale: int) -> List[dict]:
    """YOLOX-s's training pipeline after loading (MMDetection's yolox_s_8xb8-300e_coco.py)."""
    s = (img_scale, img_scale)
    return [
        dict(type='Mosaic', img_scale=s, pad_val=114.0),
        dict(type='RandomAffine', scaling_ratio_range=(0.1, 2),
             border=(-img_scale // 2, -img_scale // 2)),
        dict(type='MixUp', img_scale=s, ratio_range=(0.8, 1.6), pad_val=114.0),
        dict(type='YOLOXHSVRandomAug'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Resize', scale=s, keep_ratio=True),
        dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
        dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
        dict(type='PackDetInputs')]


def _polygon(mask: np.ndarray) -> List[np.ndarray]:
    import cv2
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(np.float64) for c in contours if len(c) >= 3]


class SceneDataset(BaseDataset):
    """Generated scenes as a dataset: each item is what LoadAnnotations gives.

    Args:
        num: Number of scenes.
        masks: ``'bitmap'``, ``'polygon'`` or None (boxes only).
        seed: Scene generator seed.
    """

    def __init__(self, num: int = 8, masks: Optional[str] = None, seed: int = 1) -> None:
        if masks not in (None, 'bitmap', 'polygon'):
            raise ValueError(f"SceneDataset masks={masks!r}: use None, 'bitmap' or 'polygon'")
        self.scenes = make_scenes(num, SCENE_SHAPE, objects=OBJECTS, seed=seed)
        self.masks = masks
        self.polygons = [[_polygon(m) for m in s['masks']] for s in self.scenes] \
            if masks == 'polygon' else None
        super().__init__(serialize_data=False, lazy_init=True)
        self._fully_initialized = True

    def full_init(self) -> None:
        self._fully_initialized = True

    def __len__(self) -> int:
        return len(self.scenes)

    def get_data_info(self, idx: int) -> dict:
        return dict(instances=[dict(bbox=b.tolist()) for b in self.scenes[idx]['boxes']])

    def __getitem__(self, idx: int) -> dict:
        s = self.scenes[idx]
        h, w = s['img'].shape[:2]
        n = len(s['boxes'])
        results = dict(img=s['img'].copy(), img_shape=(h, w), ori_shape=(h, w), img_id=idx,
                       img_path=f'{idx}.png', gt_bboxes=s['boxes'].copy(),
                       gt_bboxes_labels=s['labels'].astype(np.int64),
                       gt_ignore_flags=np.zeros(n, bool))
        if self.masks == 'bitmap':
            results['gt_masks'] = BitmapMasks(s['masks'].copy(), h, w)
        elif self.masks == 'polygon':
            results['gt_masks'] = PolygonMasks(self.polygons[idx], h, w)
        return results


def build_pipeline(model: str, masks: Optional[str] = None, img_scale: int = 640):
    """``(dataset, step)``: calling ``step(i)`` runs the model's pipeline on sample ``i``."""
    data = SceneDataset(masks=masks)
    if model == 'yolox_s':
        wrapper = MultiImageMixDataset(data, yolox_pipeline(img_scale))
        return wrapper, wrapper.__getitem__
    if model == 'rtmdet_tiny':
        steps = [TRANSFORMS.build(t) for t in rtmdet_pipeline(img_scale)]

        def step(i: int) -> Optional[dict]:
            results = data[i % len(data)]
            for t in steps:
                results = t(results)
                if results is None:
                    return None
            return results
        return data, step
    raise ValueError(f'benchmark_pipeline: unknown model {model!r}; use one of '
                     f'{list(MODELS_MEASURED)}')


def pipeline_images_per_second(model: str, num: int = 40, masks: Optional[str] = None,
                               img_scale: int = 640, warmup: int = 10) -> float:
    """Images per second of one process running ``model``'s training pipeline."""
    data, step = build_pipeline(model, masks, img_scale)
    for i in range(warmup):  # fills the caches of CachedMosaic / CachedMixUp
        step(i % len(data))
    start = time.perf_counter()
    for i in range(num):
        step(i % len(data))
    return num / (time.perf_counter() - start)


def train_images_per_second(model: str, size: int = 640, batch: int = 2,
                            iters: int = 3) -> Optional[float]:
    """Images per second of ``model``'s training step (random weights) on this CPU; None
    when its base config or types are not in this checkout."""
    path = osp.join(REPO_ROOT, 'configs', '_base_', 'models', f'{model}.py')
    if not osp.exists(path):
        return None
    with DefaultScope.overwrite_default_scope('mmft'):
        cfg = Config.fromfile(path)
        if MODELS.get(cfg.model.type) is None:
            return None
        cfg.model.backbone.init_cfg = None
        cfg.model.bbox_head.num_classes = NUM_CLASSES
        net = MODELS.build(cfg.model)
        net.init_weights()
        scenes = make_scenes(batch, (size, size), objects=OBJECTS)
        train, _ = mmft_step_fns(net, scenes, torch.device('cpu'), amp=False)
        times = interleaved(dict(train=train), iters, 1, torch.device('cpu'))
    return batch / median(times['train'])


def measure(model: str, workers: int = 2, masks: Optional[str] = None, num: int = 40,
            batch: int = 2, iters: int = 3, img_scale: int = 640) -> Dict[str, object]:
    """Pipeline and training-step images per second of ``model``, and whether ``workers``
    dataloader workers keep up with the training step."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    per_worker = pipeline_images_per_second(model, num, masks, img_scale)
    train = train_images_per_second(model, img_scale, batch, iters)
    figures: Dict[str, object] = dict(
        model=model, img_scale=img_scale, masks=masks or 'none', workers=workers,
        pipeline_images_per_s=round(per_worker, 2),
        loader_images_per_s=round(per_worker * workers, 2),
        train_images_per_s=None if train is None else round(train, 2))
    figures['pipeline_is_bottleneck'] = None if train is None else per_worker * workers < train
    return figures


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', nargs='+', default=list(MODELS_MEASURED),
                        choices=MODELS_MEASURED)
    parser.add_argument('--masks', default='none', choices=('none', 'bitmap', 'polygon'))
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--images', type=int, default=40, help='pipeline samples timed')
    parser.add_argument('--size', type=int, default=640, help='img_scale of the pipeline '
                        'and input side of the training step')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--out', help='write the figures as json here')
    args = parser.parse_args(argv)
    register_all_modules()
    masks = None if args.masks == 'none' else args.masks
    report = [measure(m, args.workers, masks, args.images, args.batch, args.iters, args.size)
              for m in args.model]
    print(json.dumps(dict(torch_threads=torch.get_num_threads(), cpus=os.cpu_count(),
                          results=report), indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
