"""The real-time detectors' training pipelines on generated images, for benchmark.py
(``--model pipeline`` and the real-time models: benchmarks/realtime.py).

MMDetection's RTMDet-tiny pipeline (CachedMosaic / RandomResize / RandomCrop /
YOLOXHSVRandomAug / RandomFlip / Pad / CachedMixUp) and YOLOX-s's (Mosaic / RandomAffine /
MixUp / YOLOXHSVRandomAug / RandomFlip / Resize / Pad / FilterAnnotations, through
``MultiImageMixDataset`` as its config has it), at the configs' 640 scale, from the point
where LoadAnnotations has run, on generated 480x640 images with 8 objects (boxes, and
bitmap or polygon masks) decoded in memory: file decoding is benchmark.py's data section.
"""
import time
from typing import List, Optional

import numpy as np
from mmengine.dataset import BaseDataset

from mmft.datasets import MultiImageMixDataset
from mmft.registry import TRANSFORMS
from mmft.structures import BitmapMasks, PolygonMasks
from tools.analysis_tools.benchmark import make_scenes

SCENE_SHAPE = (480, 640)
OBJECTS = 8


def rtmdet_pipeline(img_scale: int) -> List[dict]:
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


#: pipeline name -> its transforms at an image scale
PIPELINES = {'rtmdet-tiny': rtmdet_pipeline, 'yolox-s': yolox_pipeline}


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
    if model not in PIPELINES:
        raise ValueError(f'benchmark pipeline: unknown pipeline {model!r}; use one of '
                         f'{sorted(PIPELINES)}')
    if model == 'yolox-s':  # the mixing transforms draw from the dataset, as in its config
        wrapper = MultiImageMixDataset(data, yolox_pipeline(img_scale))
        return wrapper, wrapper.__getitem__
    steps = [TRANSFORMS.build(t) for t in PIPELINES[model](img_scale)]

    def step(i: int) -> Optional[dict]:
        results = data[i % len(data)]
        for t in steps:
            results = t(results)
            if results is None:
                return None
        return results
    return data, step


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
