"""Benchmark an mmft detector against its reference, on one machine in one run: the one
entry point of every comparison in docs/benchmark.md.

    python tools/analysis_tools/benchmark.py --model NAME [options] [--out bench.json]

NAME picks the comparison (``BENCHMARKS``): ``mask-rcnn`` (this module, the default),
``retinanet`` / ``fcos`` / ``one-stage`` (benchmarks/one_stage.py), ``ssd300`` / ``ssdlite``
/ ``yolov3`` / ``yolov3-mobilenetv2`` / ``ssd-yolov3`` (benchmarks/ssd.py), ``rtmdet-tiny``
/ ``rtmdet-ins-tiny`` / ``yolox-s`` / ``pipeline`` (benchmarks/realtime.py), ``backbones``
(benchmarks/backbones.py); ``--help`` with a
``--model`` lists that comparison's options. Options every comparison has (written once,
here): ``--batch --threads --iters --warmup --device --out``; argument checks, thread
setting, logging, seeding, printing and the JSON report happen here too. The shared timing
helpers (:func:`interleaved`, :func:`make_scenes`, :func:`mmft_step_fns`,
:func:`recording_memory`, ...) live in this module; benchmarks/__init__.py says how to add a
comparison.

Mask R-CNN R50-FPN (``--model mask-rcnn``, options ``[--size 512 | --size 800x1333]
[--infer-batch 1] [--amp] [--mmdet-defaults] [--no-memory]``):

Both detectors have the same random weights (torchvision's, converted into mmft) and the
settings of docs/benchmark.md: the same input tensors, objects, thread count and, as far as
mmft's options go, the same training settings (torchvision's fine-tuning ones); SGD runs
with lr=0, so every round does the same work. The implementations are timed alternately,
round after round (who goes first rotates), so that noise from other processes hits both
alike; every time is the median over ``--iters`` rounds. Ratios are time ratios (lower is
better for mmft): mmft / torchvision, and mmft / floor, where the floor is the backbone +
FPN alone (forward and backward for training, forward for inference), the faster of the
two implementations', which no full detector can beat.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` around each step; on CPU the peak
resident set size of a child process holding one implementation only (its ``VmHWM``,
reset per phase, or ``ru_maxrss`` where the reset is unavailable); with each peak, how far
it rose above what the process held just before the call.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from terminaltables import AsciiTable

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script: make mmft importable from the checkout
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from mmft.datasets.coco import COCO_CLASSES  # noqa: E402
from mmft.models.roi_heads.mask_heads import paste_masks  # noqa: E402
from mmft.registry import DATASETS, MODELS  # noqa: E402
from mmft.structures import BitmapMasks, DetDataSample  # noqa: E402
from mmft.utils import register_all_modules  # noqa: E402

MMFT_CONFIG = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'mask_rcnn_r50_fpn.py')
NUM_CLASSES = 80
PASTE_DETECTIONS = 100
# random weights score every class ~1/81, under any usual threshold: keep every box so that
# both detectors run NMS on everything and paste the full 100 masks, as on a busy image
SCORE_THR = 0.0
# mmft set as close to torchvision's fine-tuning settings as its options allow
MMFT_LIKE_TORCHVISION = {
    'model.backbone.norm_cfg': dict(type='BN', requires_grad=False),  # FrozenBatchNorm2d
    'model.backbone.norm_eval': True,
    'model.backbone.frozen_stages': 1,  # trainable_backbone_layers=3: stem and layer1 frozen
    'model.train_cfg.rpn_proposal.max_per_img': 2000,  # rpn_post_nms_top_n_train=2000
    'model.train_cfg.rcnn.assigner.match_low_quality': False,  # RoIHeads' Matcher
    'model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio': 2,  # MultiScaleRoIAlign
    'model.roi_head.mask_roi_extractor.roi_layer.sampling_ratio': 2,
}
MMFT_ALWAYS = {'model.backbone.init_cfg': None, 'model.test_cfg.rcnn.score_thr': SCORE_THR}
TORCHVISION_SETTINGS = dict(
    builder='MaskRCNN(resnet_fpn_backbone("resnet50", weights=None, '
            'norm_layer=FrozenBatchNorm2d, trainable_layers=3), num_classes=81)',
    box_score_thresh=SCORE_THR, min_size='short side of --size', max_size='long side')


# ------------------------------------------------------------------ inputs
def make_scenes(batch: int, size: Tuple[int, int], objects: int, seed: int = 0) -> List[dict]:
    """Images (uint8 BGR) with ``objects`` filled ellipses each: boxes, labels, masks."""
    rng = np.random.RandomState(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w] + 0.5
    scenes = []
    for _ in range(batch):
        img = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
        boxes, masks = [], []
        for _ in range(objects):
            bw, bh = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
            x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            inside = (((xx - x1 - bw / 2) / (bw / 2))**2 + ((yy - y1 - bh / 2) / (bh / 2))**2
                      <= 1)
            img[inside] = rng.randint(0, 256, 3)
            ys, xs = np.nonzero(inside)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            masks.append(inside.astype(np.uint8))
        scenes.append(dict(img=img, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                           labels=rng.randint(0, NUM_CLASSES, objects),
                           masks=np.stack(masks) if masks else np.zeros((0, h, w), np.uint8)))
    return scenes


def mmft_batch(scenes: Sequence[dict], with_gt: bool) -> dict:
    """What mmft's dataloader gives the model: uint8 BGR tensors and DetDataSamples."""
    inputs, samples = [], []
    for s in scenes:
        h, w = s['img'].shape[:2]
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1., 1.)))
        if with_gt:
            sample.gt_instances = InstanceData(
                bboxes=torch.from_numpy(s['boxes']), labels=torch.from_numpy(s['labels']),
                masks=BitmapMasks(s['masks'], h, w))
        inputs.append(torch.from_numpy(s['img']).permute(2, 0, 1).contiguous())
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def torchvision_batch(scenes: Sequence[dict], device: torch.device
                      ) -> Tuple[List[torch.Tensor], List[dict]]:
    """What torchvision's reference loader gives the model: float RGB in [0, 1], targets
    with labels shifted by one (0 is background)."""
    images = [torch.from_numpy(np.ascontiguousarray(s['img'][..., ::-1])).permute(2, 0, 1)
              .float().div(255).to(device) for s in scenes]
    targets = [dict(boxes=torch.from_numpy(s['boxes']).to(device),
                    labels=torch.from_numpy(s['labels'] + 1).to(device),
                    masks=torch.from_numpy(s['masks']).to(device)) for s in scenes]
    return images, targets


# ------------------------------------------------------------------ models
def build_mmft(device: torch.device, weights: Dict[str, torch.Tensor],
               like_torchvision: bool = True, overrides: Optional[dict] = None
               ) -> torch.nn.Module:
    """mmft's shipped Mask R-CNN R50-FPN config (see MMFT_LIKE_TORCHVISION) with ``weights``
    (torchvision's random ones, converted by mmft's torchvision converter)."""
    cfg = Config.fromfile(MMFT_CONFIG)
    cfg.merge_from_dict({**MMFT_ALWAYS, **(MMFT_LIKE_TORCHVISION if like_torchvision else {}),
                         **(overrides or {})})
    model = MODELS.build(cfg.model)
    model.init_weights()
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError('torchvision weights do not fit mmft Mask R-CNN: missing '
                           f'{result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]}')
    return model.to(device)


def shared_weights(torchvision_model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """torchvision's random weights in mmft's layout. The same weights give both detectors the
    same proposals, hence the same number of sampled positives: the mask head's workload."""
    from mmft.checkpoint.converters.torchvision import convert_torchvision
    return convert_torchvision(torchvision_model.state_dict()).state_dict


def build_torchvision(size: Tuple[int, int], device: torch.device) -> torch.nn.Module:
    """torchvision's Mask R-CNN R50-FPN as ``maskrcnn_resnet50_fpn`` builds it for fine-tuning
    (frozen BN, trainable_backbone_layers=3), minus loading the weights: with
    ``weights=None, weights_backbone=None`` that builder would train BN and all 5 stages."""
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.mask_rcnn import MaskRCNN
    from torchvision.ops.misc import FrozenBatchNorm2d
    backbone = resnet_fpn_backbone(backbone_name='resnet50', weights=None,
                                   norm_layer=FrozenBatchNorm2d, trainable_layers=3)
    # min/max size = the input's sides: the model's own resize is then a no-op scale of 1
    model = MaskRCNN(backbone, num_classes=NUM_CLASSES + 1, min_size=min(size),
                     max_size=max(size), box_score_thresh=SCORE_THR)
    return model.to(device)


def _sgd(model: torch.nn.Module) -> torch.optim.SGD:
    params = [p for p in model.parameters() if p.requires_grad]
    # lr=0 keeps the weights, hence the proposals and sampled positives, the same in every
    # round and on both sides; SGD still does all its arithmetic
    return torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=1e-4)


class _CpuAmpOptimWrapper(OptimWrapper):
    """bfloat16 autocast on CPU (MMEngine's AmpOptimWrapper needs an accelerator)."""

    @contextlib.contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


def _amp_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == 'cuda' else torch.bfloat16


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=_amp_dtype(device)) if amp \
        else contextlib.nullcontext()


def mmft_step_fns(model: torch.nn.Module, scenes: Sequence[dict], device: torch.device,
                  amp: bool) -> Tuple[Callable, Callable]:
    """(training step, inference of one batch) through MMEngine's train_step / test_step."""
    if amp and device.type == 'cuda':
        from mmengine.optim import AmpOptimWrapper
        wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype='float16')
    else:
        wrapper = (_CpuAmpOptimWrapper if amp else OptimWrapper)(optimizer=_sgd(model))
    train_data = mmft_batch(scenes, with_gt=True)
    test_data = mmft_batch(scenes, with_gt=False)

    def train() -> None:
        model.train()
        model.train_step(train_data, wrapper)

    def infer() -> None:
        model.eval()
        with torch.no_grad(), _autocast(device, amp):
            model.test_step(test_data)
    return train, infer


def torchvision_step_fns(model: torch.nn.Module, scenes: Sequence[dict], device: torch.device,
                         amp: bool) -> Tuple[Callable, Callable]:
    """(training step, inference of one batch) as references/detection's engine.py runs them."""
    optimizer = _sgd(model)
    scaler = torch.amp.GradScaler('cuda') if amp and device.type == 'cuda' else None
    images, targets = torchvision_batch(scenes, device)

    def train() -> None:
        model.train()
        with _autocast(device, amp):
            loss = sum(model(images, targets).values())
        loss.item()  # the reference logs it every step
        optimizer.zero_grad()
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def infer() -> None:
        model.eval()
        with torch.no_grad(), _autocast(device, amp):
            model(images)
    return train, infer


def floor_fns(extract: Callable[[torch.Tensor], Sequence[torch.Tensor]],
              model: torch.nn.Module, inputs: torch.Tensor, device: torch.device,
              amp: bool) -> Tuple[Callable, Callable]:
    """(forward + backward, forward) of a backbone + FPN on normalised inputs."""

    def train() -> None:
        model.train()
        with _autocast(device, amp):
            loss = sum(o.float().mean() for o in extract(inputs))
        loss.backward()
        model.zero_grad(set_to_none=True)

    def infer() -> None:
        model.eval()
        with torch.no_grad(), _autocast(device, amp):
            extract(inputs)
    return train, infer


# ------------------------------------------------------------------ timing
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def interleaved(fns: Dict[str, Callable[[], None]], iters: int, warmup: int,
                device: torch.device) -> Dict[str, List[float]]:
    """Seconds per call of each function, the functions alternating round by round."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: [] for name in names}
    for r in range(iters):
        k = r % len(names)  # rotate who goes first: no side always runs on a warm cache
        for name in names[k:] + names[:k]:
            _sync(device)
            start = time.perf_counter()
            fns[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# ------------------------------------------------------------------ mask pasting
def paste_fns(size: Tuple[int, int], device: torch.device, seed: int = 0
              ) -> Dict[str, Callable[[], None]]:
    """torchvision's per-mask paste and mmft's, for 100 detections of 28x28 probabilities."""
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    g = torch.Generator().manual_seed(seed)
    h, w = size
    probs = torch.rand(PASTE_DETECTIONS, 28, 28, generator=g).to(device)
    wh = torch.rand(PASTE_DETECTIONS, 2, generator=g) * 0.55 + 0.05
    wh = wh * torch.tensor([w, h])
    xy = torch.rand(PASTE_DETECTIONS, 2, generator=g) * (torch.tensor([w, h]) - wh)
    boxes = torch.cat([xy, xy + wh], dim=1).to(device)
    return {'mmft': lambda: paste_masks(probs, boxes, h, w, 0.5),
            'torchvision': lambda: paste_masks_in_image(probs[:, None], boxes, (h, w))}


# ------------------------------------------------------------------ data pipeline
def write_coco(root: str, num_images: int, shape: Tuple[int, int], objects: int,
               seed: int = 0) -> str:
    """A COCO-format set of JPEGs with polygon (24-gon ellipse) masks; returns the json path."""
    rng = np.random.RandomState(seed)
    h, w = shape
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    images, anns = [], []
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for i in range(num_images):
        img = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
        for _ in range(objects):
            rx, ry = rng.uniform(0.05, 0.25) * w, rng.uniform(0.05, 0.25) * h
            cx, cy = rng.uniform(rx, w - rx), rng.uniform(ry, h - ry)
            poly = np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1)
            cv2.fillPoly(img, [poly.astype(np.int32)], rng.randint(0, 256, 3).tolist())
            x1, y1 = poly.min(0)
            x2, y2 = poly.max(0)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, iscrowd=0,
                             category_id=int(rng.randint(NUM_CLASSES)) + 1,
                             bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                             area=float(np.pi * rx * ry), segmentation=[poly.ravel().tolist()]))
        name = f'{i:06d}.jpg'
        cv2.imwrite(osp.join(root, 'images', name), img)
        images.append(dict(id=i + 1, file_name=name, height=h, width=w))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(COCO_CLASSES)]
    ann_file = osp.join(root, 'instances.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=categories), f)
    return ann_file


def mmft_dataset(root: str, ann_file: str, size: Tuple[int, int]):
    """CocoDataset + LoadImageFromFile, LoadAnnotations, Resize, RandomFlip, PackDetInputs."""
    h, w = size
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='Resize', scale=(w, h), keep_ratio=True),
                dict(type='RandomFlip', prob=0.5),
                dict(type='PackDetInputs')]
    return DATASETS.build(dict(type='CocoDataset', data_root=root, ann_file=ann_file,
                               data_prefix=dict(img='images/'), pipeline=pipeline))


class ReferenceCocoLoader:
    """torchvision references/detection's way: ``CocoDetection`` (PIL), polygons decoded to
    masks with pycocotools (``ConvertCocoPolysToMask``), ``RandomHorizontalFlip``,
    ``PILToTensor`` + float, and the resize ``GeneralizedRCNNTransform`` does (bilinear
    image, nearest masks) to the same size rule as mmft's ``keep_ratio`` Resize."""

    def __init__(self, root: str, ann_file: str, size: Tuple[int, int]) -> None:
        from torchvision.datasets import CocoDetection
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            self.dataset = CocoDetection(osp.join(root, 'images'), ann_file)
        self.min_size, self.max_size = min(size), max(size)

    def __len__(self) -> int:
        return len(self.dataset)

    @staticmethod
    def _masks(segmentations: list, h: int, w: int) -> torch.Tensor:
        from pycocotools import mask as coco_mask
        masks = []
        for polygons in segmentations:
            decoded = coco_mask.decode(coco_mask.frPyObjects(polygons, h, w))
            decoded = decoded[..., None] if decoded.ndim < 3 else decoded
            masks.append(torch.as_tensor(decoded, dtype=torch.uint8).any(dim=2))
        return torch.stack(masks).to(torch.uint8) if masks else \
            torch.zeros((0, h, w), dtype=torch.uint8)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, dict]:
        import torchvision.transforms.functional as TF
        img, anns = self.dataset[index]
        w, h = img.size
        anns = [a for a in anns if not a.get('iscrowd', 0)]
        boxes = torch.as_tensor([a['bbox'] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2].clamp_(min=0, max=w)
        boxes[:, 1::2].clamp_(min=0, max=h)
        labels = torch.tensor([a['category_id'] for a in anns], dtype=torch.int64)
        masks = self._masks([a['segmentation'] for a in anns], h, w)
        if random.random() < 0.5:
            img = TF.hflip(img)
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
            masks = masks.flip(-1)
        image = TF.pil_to_tensor(img).float().div_(255)
        scale = min(self.min_size / min(h, w), self.max_size / max(h, w))
        image = F.interpolate(image[None], scale_factor=scale, mode='bilinear',
                              recompute_scale_factor=True, align_corners=False)[0]
        new_h, new_w = image.shape[-2:]
        boxes *= torch.tensor([new_w / w, new_h / h] * 2)
        masks = F.interpolate(masks[:, None].float(), size=(new_h, new_w))[:, 0].byte()
        return image, dict(boxes=boxes, labels=labels, masks=masks)


def data_fns(root: str, ann_file: str, size: Tuple[int, int]) -> Dict[str, Callable[[], None]]:
    """One pass over the set per call, for each loader."""
    loaders = {'mmft': mmft_dataset(root, ann_file, size),
               'torchvision': ReferenceCocoLoader(root, ann_file, size)}
    return {name: (lambda d=d: [d[i] for i in range(len(d))]) for name, d in loaders.items()}


# ------------------------------------------------------------------ memory
def _rss_mb(field: str) -> Optional[float]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark of this process (Linux)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss_mb(can_reset: bool) -> float:
    peak = _rss_mb('VmHWM') if can_reset else None
    # ru_maxrss is KiB on Linux; the process-lifetime peak when the mark cannot be reset
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(fns: Dict[str, Callable[[], None]], device: torch.device
                   ) -> Dict[str, Dict[str, float]]:
    """Per phase, run once after a warm-up call, in this order: ``peak`` memory (MB; CPU:
    the process's peak RSS, CUDA: peak allocated) and ``step``, how far the peak rose above
    what was held just before the call."""
    peaks = {}
    for phase, fn in fns.items():
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() / 2**20
            fn()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            can_reset = _reset_peak_rss()
            before = _rss_mb('VmRSS') or 0.
            fn()
            peak = _peak_rss_mb(can_reset)
        peaks[phase] = {'peak': peak, 'step': peak - before}
    return peaks


def recording_memory(fn: Callable[[], None], device: torch.device, record: List[float]
                     ) -> Callable[[], None]:
    """``fn`` that appends to ``record`` how far each call raised the memory peak (MB; CPU:
    peak RSS, CUDA: peak allocated), so timed rounds measure memory at no extra calls."""
    def call() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated() / 2**20
            fn()
            torch.cuda.synchronize()
            record.append(torch.cuda.max_memory_allocated() / 2**20 - before)
        else:
            can_reset = _reset_peak_rss()
            before = _rss_mb('VmRSS') or 0.
            fn()
            record.append(_peak_rss_mb(can_reset) - before)
    return call


def probe_memory(impl: str, args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Peak memory of one implementation's inference, then training step, in a process that
    holds nothing else (inference first: the larger training peak would mask it)."""
    device = torch.device(args.device)
    scenes = make_scenes(args.batch, args.size, args.objects)
    if impl == 'mmft':
        # mapped, not read: the file's copy of the weights never joins this process's heap
        weights = torch.load(args.probe_weights, weights_only=True, mmap=True)
        train, infer = mmft_step_fns(build_mmft(device, weights), scenes, device, args.amp)
        del weights
    else:
        train, infer = torchvision_step_fns(build_torchvision(args.size, device), scenes,
                                            device, args.amp)
    return measure_memory({'inference': infer, 'train_step': train}, device)


def memory_in_children(argv: List[str], weights: Dict[str, torch.Tensor]
                       ) -> Dict[str, Dict[str, float]]:
    """Run ``probe_memory`` for each implementation in its own process (CPU peak RSS)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'weights.pth')
        torch.save(weights, path)  # mmft's process never holds a torchvision model
        procs = {impl: subprocess.Popen(
            [sys.executable, osp.abspath(__file__), *argv, '--probe-memory', impl,
             '--probe-weights', path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for impl in ('mmft', 'torchvision')}
        out = {}
        for impl, proc in procs.items():
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f'memory probe of {impl} failed (exit {proc.returncode}):\n'
                                   f'{stderr[-2000:]}')
            out[impl] = json.loads(stdout.strip().splitlines()[-1])
    return out


# ------------------------------------------------------------------ the benchmark
def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _pair(times: Dict[str, List[float]], a: str, b: str, per: int = 1) -> dict:
    ta, tb = median(times[a]) / per, median(times[b]) / per
    return {'mmft': ta, 'torchvision': tb, 'ratio': ta / tb}


def _floors(mm: torch.nn.Module, tv: torch.nn.Module, inputs: torch.Tensor,
            device: torch.device, amp: bool) -> Dict[str, Tuple[Callable, Callable]]:
    """Backbone + FPN of each implementation: (forward + backward, forward)."""
    return {'floor_mmft': floor_fns(lambda x: mm.neck(mm.backbone(x)), mm, inputs, device, amp),
            'floor_torchvision': floor_fns(lambda x: list(tv.backbone(x).values()), tv, inputs,
                                           device, amp)}


def _against_floor(times: Dict[str, List[float]], per: int = 1) -> dict:
    """mmft and torchvision per ``per`` images, their ratio, and both over the floor."""
    floor = min(median(times['floor_mmft']), median(times['floor_torchvision'])) / per
    pair = _pair(times, 'mmft', 'torchvision', per=per)
    return dict(pair, floor=floor, mmft_over_floor=pair['mmft'] / floor,
                torchvision_over_floor=pair['torchvision'] / floor)


def measure_training(args, mm, tv, weights, scenes, inputs, device, results, samples) -> None:
    """Training step of both, their floors and (optionally) mmft with MMDetection's
    defaults, interleaved."""
    fns = {'mmft': mmft_step_fns(mm, scenes, device, args.amp)[0],
           'torchvision': torchvision_step_fns(tv, scenes, device, args.amp)[0],
           **{k: v[0] for k, v in _floors(mm, tv, inputs, device, args.amp).items()}}
    if args.mmdet_defaults:
        mmdet = build_mmft(device, weights, like_torchvision=False)
        fns['mmft_mmdet_defaults'] = mmft_step_fns(mmdet, scenes, device, args.amp)[0]
    times = samples['train_step'] = interleaved(fns, args.iters, args.warmup, device)
    results['train_step'] = _against_floor(times)
    results['floor'] = {'mmft': median(times['floor_mmft']),
                        'torchvision': median(times['floor_torchvision'])}
    if args.mmdet_defaults:
        t = median(times['mmft_mmdet_defaults'])
        results['train_step_mmdet_defaults'] = dict(
            mmft=t, ratio=t / results['train_step']['torchvision'],
            mmft_over_floor=t / results['train_step']['floor'])


def measure_inference(args, mm, tv, scenes, inputs, device, results, samples) -> None:
    """Inference of ``--infer-batch`` images and the forward-only floor, per image."""
    scenes, inputs = scenes[:args.infer_batch], inputs[:args.infer_batch]
    fns = {'mmft': mmft_step_fns(mm, scenes, device, args.amp)[1],
           'torchvision': torchvision_step_fns(tv, scenes, device, args.amp)[1],
           **{k: v[1] for k, v in _floors(mm, tv, inputs, device, args.amp).items()}}
    times = samples['inference'] = interleaved(fns, args.iters, args.warmup, device)
    results['inference'] = _against_floor(times, per=args.infer_batch)


def measure_frozen(args, mm, weights, scenes, device, results, samples) -> None:
    """mmft with frozen_stages=4 against -1, and where the backward enters the backbone."""
    frozen = {k: build_mmft(device, weights, overrides={'model.backbone.frozen_stages': k})
              for k in (4, -1)}
    fns = {f'frozen_stages={k}': mmft_step_fns(m, scenes, device, args.amp)[0]
           for k, m in frozen.items()}
    times = samples['frozen_stages'] = interleaved(fns, args.iters, args.warmup, device)
    t4, t_all = median(times['frozen_stages=4']), median(times['frozen_stages=-1'])
    results['frozen_stages'] = {'frozen_stages=4': t4, 'frozen_stages=-1': t_all,
                                'speedup': t_all / t4,
                                'frozen_stages=4 autograd': backward_stops(frozen[4], scenes),
                                'frozen_stages=1 autograd': backward_stops(mm, scenes)}


def measure_data(args, results, samples) -> None:
    """Images per second of both loaders on one generated COCO set (ratio: mmft's time per
    image / torchvision's)."""
    with tempfile.TemporaryDirectory() as root:
        ann_file = write_coco(root, args.data_images, args.data_shape, args.objects)
        random.seed(0)
        np.random.seed(0)
        times = samples['data_pipeline'] = interleaved(
            data_fns(root, ann_file, args.size), args.iters, args.warmup, torch.device('cpu'))
    pair = _pair(times, 'mmft', 'torchvision', per=args.data_images)
    results['data_pipeline'] = dict(pair, mmft_images_per_s=1 / pair['mmft'],
                                    torchvision_images_per_s=1 / pair['torchvision'])


def measure_memory_of_both(args, argv, mm, tv, weights, scenes, device, results) -> None:
    """Peak memory of both: in this process on CUDA, in one child process each on CPU."""
    if device.type == 'cuda':
        peaks = {}
        for name, model, step_fns in (('mmft', mm, mmft_step_fns),
                                      ('torchvision', tv, torchvision_step_fns)):
            train, infer = step_fns(model, scenes, device, args.amp)
            peaks[name] = measure_memory({'inference': infer, 'train_step': train}, device)
    else:
        peaks = memory_in_children(argv, weights)
    results['memory_mb'] = {
        phase: {key: {'mmft': peaks['mmft'][phase][key],
                      'torchvision': peaks['torchvision'][phase][key],
                      'ratio': _ratio(peaks['mmft'][phase][key],
                                      peaks['torchvision'][phase][key])}
                for key in ('peak', 'step')}
        for phase in ('train_step', 'inference')}


def run(args: argparse.Namespace, argv: List[str]) -> dict:
    """Every measurement (see the module docstring); the report as written to ``--out``."""
    env = environment(args)
    device = torch.device(args.device)
    scenes = make_scenes(args.batch, args.size, args.objects)
    tv = build_torchvision(args.size, device)
    weights = shared_weights(tv)
    mm = build_mmft(device, weights)
    inputs = mm.data_preprocessor(mmft_batch(scenes, with_gt=False), False)['inputs']
    results, samples = {}, {}
    measure_training(args, mm, tv, weights, scenes, inputs, device, results, samples)
    measure_inference(args, mm, tv, scenes, inputs, device, results, samples)
    times = samples['mask_paste'] = interleaved(paste_fns(args.size, device), args.iters,
                                                args.warmup, device)
    results['mask_paste'] = dict(_pair(times, 'mmft', 'torchvision'))
    results['mask_paste']['speedup'] = 1 / results['mask_paste']['ratio']
    measure_frozen(args, mm, weights, scenes, device, results, samples)
    measure_data(args, results, samples)
    if not args.no_memory:
        measure_memory_of_both(args, argv, mm, tv, weights, scenes, device, results)
    if hasattr(os, 'getloadavg'):  # the load before is in env: was the machine busy?
        env['load_average_after'] = list(os.getloadavg())
    return dict(environment=env, settings=settings(args), results=results, samples_s=samples)


def backward_stops(model: torch.nn.Module, scenes: Sequence[dict]) -> dict:
    """Where autograd enters the backbone in a training step: which stage outputs (C2..C5)
    need a gradient, whether the image does, and how many backbone parameters get one."""
    model.train()
    data = model.data_preprocessor(mmft_batch(scenes, with_gt=True), True)
    outs = model.backbone(data['inputs'])
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    with_grad = sum(p.grad is not None for p in model.backbone.parameters())
    model.zero_grad(set_to_none=True)
    return {'input_requires_grad': bool(data['inputs'].requires_grad),
            'stage_outputs_require_grad': [bool(o.requires_grad) for o in outs],
            'backbone_params_with_grad': with_grad}


def environment(args: argparse.Namespace) -> dict:
    import mmengine
    import torchvision
    env = dict(torch=torch.__version__, torchvision=torchvision.__version__,
               mmengine=mmengine.__version__, python=platform.python_version(),
               machine=platform.machine(), cpu_count=os.cpu_count(),
               threads=torch.get_num_threads(), device=args.device,
               size=list(args.size), batch=args.batch, infer_batch=args.infer_batch,
               objects=args.objects, iters=args.iters, warmup=args.warmup, amp=args.amp,
               data_images=args.data_images, data_shape=list(args.data_shape))
    if args.device == 'cuda':
        env['gpu'] = torch.cuda.get_device_name()
    if hasattr(os, 'getloadavg'):
        env['load_average_before'] = list(os.getloadavg())
    return env


def settings(args: argparse.Namespace) -> dict:
    return {'mmft': {'config': osp.relpath(MMFT_CONFIG, REPO_ROOT),
                     'overrides': {**MMFT_ALWAYS, **MMFT_LIKE_TORCHVISION}},
            'torchvision': TORCHVISION_SETTINGS,
            'optimizer': 'SGD(lr=0, momentum=0.9, weight_decay=1e-4) on the trainable parameters',
            'weights': "torchvision's random init, converted into mmft",
            'amp': (str(_amp_dtype(torch.device(args.device))) if args.amp else None)}


def format_table(report: dict) -> str:
    """The results as an AsciiTable: times, ratios mmft / torchvision and mmft / floor."""
    r = report['results']

    def ms(v):
        return f'{v * 1000:.1f} ms' if v < 1 else f'{v:.2f} s'

    def x(v):
        return '-' if v is None else f'{v:.2f}'

    rows = [['measurement', 'mmft', 'torchvision', 'mmft/tv', 'mmft/floor', 'tv/floor']]
    t = r['train_step']
    rows.append(['train step (batch)', ms(t['mmft']), ms(t['torchvision']), x(t['ratio']),
                 x(t['mmft_over_floor']), x(t['torchvision_over_floor'])])
    if 'train_step_mmdet_defaults' in r:
        d = r['train_step_mmdet_defaults']
        rows.append(['  mmft, MMDetection defaults', ms(d['mmft']), '', x(d['ratio']),
                     x(d['mmft_over_floor']), ''])
    rows.append(['  floor: backbone+FPN fwd+bwd', ms(r['floor']['mmft']),
                 ms(r['floor']['torchvision']), x(r['floor']['mmft'] / r['floor']['torchvision']),
                 '', ''])
    i = r['inference']
    rows.append(['inference (per image)', ms(i['mmft']), ms(i['torchvision']), x(i['ratio']),
                 x(i['mmft_over_floor']), x(i['torchvision_over_floor'])])
    p = r['mask_paste']
    rows.append([f'paste {PASTE_DETECTIONS} masks', ms(p['mmft']), ms(p['torchvision']),
                 x(p['ratio']), '', ''])
    d = r['data_pipeline']
    rows.append(['data pipeline (images/s)', f"{d['mmft_images_per_s']:.1f}",
                 f"{d['torchvision_images_per_s']:.1f}", x(d['ratio']), '', ''])
    for phase, m in r.get('memory_mb', {}).items():
        for key, what in (('peak', 'peak memory'), ('step', '  rise during the call')):
            rows.append([f'{what}, {phase.replace("_", " ")}', f"{m[key]['mmft']:.0f} MB",
                         f"{m[key]['torchvision']:.0f} MB", x(m[key]['ratio']), '', ''])
    f = r['frozen_stages']
    rows.append(['mmft frozen_stages=4 vs -1', ms(f['frozen_stages=4']),
                 ms(f['frozen_stages=-1']) + ' (-1)', x(1 / f['speedup']), '', ''])
    env = report['environment']
    title = (f" {env['size'][0]}x{env['size'][1]}, batch {env['batch']}, {env['threads']} "
             f"threads, {env['device']}{', amp' if env['amp'] else ''} ")
    return AsciiTable(rows, title=title).table


# ------------------------------------------------------------------ command line
def _size(text: str) -> Tuple[int, int]:
    parts = text.lower().split('x')
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        h = w = None
    if h is None or h < 32 or w < 32:
        raise argparse.ArgumentTypeError(f'size {text!r}: give HxW (e.g. 800x1333) or one side '
                                         '(e.g. 512), each >= 32')
    return h, w


# ------------------------------------------------------------------ Mask R-CNN's arguments
#: ``--model`` names this module serves -> the defaults they set
MODELS_SERVED = {'mask-rcnn': {}}
DEFAULTS = dict(batch=2, iters=5, warmup=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Mask R-CNN's own options (the common ones: :func:`common_parser`)."""
    parser.add_argument('--size', type=_size, default=(512, 512),
                        help='input HxW, or one side for a square (default 512)')
    parser.add_argument('--infer-batch', type=int, default=1,
                        help='images per inference call (<= --batch; default 1)')
    parser.add_argument('--objects', type=int, default=8, help='objects per image (default 8)')
    parser.add_argument('--amp', action='store_true',
                        help='autocast: float16 with a grad scaler on CUDA, bfloat16 on CPU')
    parser.add_argument('--mmdet-defaults', action='store_true',
                        help="also time mmft's training step with MMDetection's defaults")
    parser.add_argument('--data-images', type=int, default=16,
                        help='images of the generated COCO set (default 16)')
    parser.add_argument('--data-shape', type=_size, default=(480, 640),
                        help='HxW of its images before the Resize (default 480x640)')
    parser.add_argument('--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument('--probe-memory', choices=('mmft', 'torchvision'),
                        help=argparse.SUPPRESS)  # internal: the CPU memory child
    parser.add_argument('--probe-weights', help=argparse.SUPPRESS)  # its mmft weights


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.infer_batch <= args.batch:
        parser.error(f'--infer-batch {args.infer_batch} must be in 1..--batch ({args.batch})')


# ------------------------------------------------------------------ the one entry point
#: ``--model`` NAME -> the module holding that comparison (see benchmarks/__init__.py)
BENCHMARKS = {
    'mask-rcnn': __name__ if __name__ != '__main__' else 'tools.analysis_tools.benchmark',
    'retinanet': 'tools.analysis_tools.benchmarks.one_stage',
    'fcos': 'tools.analysis_tools.benchmarks.one_stage',
    'one-stage': 'tools.analysis_tools.benchmarks.one_stage',
    'ssd300': 'tools.analysis_tools.benchmarks.ssd',
    'ssdlite': 'tools.analysis_tools.benchmarks.ssd',
    'yolov3': 'tools.analysis_tools.benchmarks.ssd',
    'yolov3-mobilenetv2': 'tools.analysis_tools.benchmarks.ssd',
    'ssd-yolov3': 'tools.analysis_tools.benchmarks.ssd',
    'rtmdet-tiny': 'tools.analysis_tools.benchmarks.realtime',
    'rtmdet-ins-tiny': 'tools.analysis_tools.benchmarks.realtime',
    'yolox-s': 'tools.analysis_tools.benchmarks.realtime',
    'pipeline': 'tools.analysis_tools.benchmarks.realtime',
    'backbones': 'tools.analysis_tools.benchmarks.backbones',
}


def _module(name: str):
    if name == 'mask-rcnn':
        return sys.modules[__name__]
    import importlib
    module = importlib.import_module(BENCHMARKS[name])
    if name not in module.MODELS_SERVED:
        raise RuntimeError(f'benchmark table: {BENCHMARKS[name]} does not serve --model {name} '
                           f'(its MODELS_SERVED: {sorted(module.MODELS_SERVED)})')
    return module


def common_parser(model: str) -> argparse.ArgumentParser:
    """The options every comparison has, with the defaults of ``model``'s module."""
    parser = argparse.ArgumentParser(
        description='Benchmark an mmft detector against its reference (docs/benchmark.md): '
                    f'--model {"|".join(BENCHMARKS)}')
    parser.add_argument('--model', choices=list(BENCHMARKS), default='mask-rcnn',
                        help='which comparison (default mask-rcnn)')
    parser.add_argument('--batch', type=int, help='training batch')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch (and OpenCV) threads (default: torch default)')
    parser.add_argument('--iters', type=int, help='timed rounds')
    parser.add_argument('--warmup', type=int, help='untimed rounds')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--out', help='write the report as JSON here')
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """``--model`` picks the module; its options join the common ones, its defaults apply."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--model', choices=list(BENCHMARKS), default='mask-rcnn')
    model = pre.parse_known_args(argv)[0].model
    module = _module(model)
    parser = common_parser(model)
    module.add_arguments(parser)
    parser.set_defaults(**{**module.DEFAULTS, **module.MODELS_SERVED[model]})
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available; use --device cpu')
    if args.iters < 1 or args.warmup < 0 or args.batch < 1:
        parser.error(f'--iters ({args.iters}) and --batch ({args.batch}) must be >= 1 and '
                     f'--warmup ({args.warmup}) >= 0')
    if hasattr(module, 'check_args'):
        module.check_args(parser, args)
    args.load_average_before = list(os.getloadavg()) if hasattr(os, 'getloadavg') else None
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    module = _module(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    # MMEngine logs every parameter's initialiser at INFO
    MMLogger.get_instance('mmft-benchmark', log_level='WARNING')
    MMLogger.get_current_instance().setLevel('ERROR')  # no init logs between timings
    register_all_modules()
    torch.manual_seed(0)
    if args.model == 'mask-rcnn' and args.probe_memory:
        print(json.dumps(probe_memory(args.probe_memory, args)))
        return {}
    report = module.run(args, argv) if args.model == 'mask-rcnn' else module.run(args)
    print(module.format_table(report))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    main()
