"""CopyPaste (Ghiasi et al., 2021, "Simple Copy-Paste"), MMDetection 3.x's name and arguments.

It mixes two samples: the destination (``results``) and one source in
``results['mix_results']``, which a multi-image dataset wrapper fills (MMDetection's
``MultiImageMixDataset`` asks the transform for ``get_indexes(dataset)`` and runs the
pipeline before it on those images). Both images must already have the same size (resize,
crop and pad both to a fixed size first, as MMDetection's configs do).

Some source objects are pasted on the destination; destination masks lose the pasted
pixels, their boxes become the tight boxes of what is left, and a destination object
disappears when both its box moved by more than ``bbox_occluded_thr`` pixels on some side
and fewer than ``mask_occluded_thr`` mask pixels are left. Masks come back as
:class:`BitmapMasks`.
"""
from typing import Sequence

import numpy as np

from mmft.registry import TRANSFORMS
from mmft.structures.masks import BitmapMasks, PolygonMasks
from .base import BaseTransform


def _bitmaps(results: dict, paste_by_box: bool, role: str) -> BitmapMasks:
    masks = results.get('gt_masks')
    if masks is not None:
        return masks.to_bitmap() if isinstance(masks, PolygonMasks) else masks
    if not paste_by_box:
        raise KeyError(f'CopyPaste needs gt_masks in the {role} sample; load them with '
                       'LoadAnnotations(with_mask=True), or set paste_by_box=True to paste '
                       'whole boxes')
    h, w = results['img'].shape[:2]
    canvas = np.zeros((len(results['gt_bboxes']), h, w), np.uint8)
    for m, (x1, y1, x2, y2) in zip(canvas, np.asarray(results['gt_bboxes'])):
        m[int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))] = 1
    return BitmapMasks(canvas, h, w)


@TRANSFORMS.register_module()
class CopyPaste(BaseTransform):
    """Paste objects of ``results['mix_results'][0]`` onto ``results``.

    Args:
        max_num_pasted: At most this many source objects are pasted.
        bbox_occluded_thr: Largest box change (pixels, any side) of a kept object.
        mask_occluded_thr: An object whose box changed more stays if more mask pixels than
            this are left.
        selected: Paste a random subset (0 to ``max_num_pasted``) of the source objects;
            False pastes them all.
        paste_by_box: Without masks, use filled boxes as masks.
    """

    def __init__(self, max_num_pasted: int = 100, bbox_occluded_thr: int = 10,
                 mask_occluded_thr: int = 300, selected: bool = True,
                 paste_by_box: bool = False) -> None:
        self.max_num_pasted = max_num_pasted
        self.bbox_occluded_thr = bbox_occluded_thr
        self.mask_occluded_thr = mask_occluded_thr
        self.selected = selected
        self.paste_by_box = paste_by_box

    def get_indexes(self, dataset: Sequence) -> int:
        """Index of the source image (for a multi-image dataset wrapper)."""
        return int(np.random.randint(0, len(dataset)))

    def transform(self, results: dict) -> dict:
        mix = results.get('mix_results')
        if not isinstance(mix, (list, tuple)) or len(mix) != 1:
            raise KeyError('CopyPaste needs results["mix_results"] with exactly one source '
                           'sample; use it inside a multi-image dataset wrapper '
                           f'(MultiImageMixDataset), got {type(mix).__name__}')
        src = mix[0]
        if src['img'].shape[:2] != results['img'].shape[:2]:
            raise ValueError(f"CopyPaste source image {src['img'].shape[:2]} and destination "
                             f"{results['img'].shape[:2]} differ in size; resize, crop and pad "
                             'both to one fixed size before CopyPaste')
        src_masks = _bitmaps(src, self.paste_by_box, 'source')
        keep = np.arange(len(src['gt_bboxes']))
        if self.selected:
            count = int(np.random.randint(0, min(len(keep) + 1, self.max_num_pasted)))
            keep = np.random.choice(len(keep), size=count, replace=False)
        if len(keep) == 0:
            return results
        dst_masks = _bitmaps(results, self.paste_by_box, 'destination')
        pasted = src_masks.masks[keep].any(axis=0)  # (H, W)
        h, w = results['img'].shape[:2]
        left = np.where(pasted[None], 0, dst_masks.masks).astype(np.uint8).reshape(-1, h, w)
        left_masks = BitmapMasks(left, h, w)
        new_boxes = left_masks.get_bboxes().numpy()
        old_boxes = np.asarray(results['gt_bboxes'], np.float32).reshape(-1, 4)
        unmoved = (np.abs(new_boxes - old_boxes) <= self.bbox_occluded_thr).all(axis=1)
        valid = unmoved | (left.sum(axis=(1, 2)) > self.mask_occluded_thr)

        alpha = pasted[..., None] if results['img'].ndim == 3 else pasted
        results['img'] = np.where(alpha, src['img'], results['img']).astype(results['img'].dtype)
        results['gt_bboxes'] = np.concatenate(
            [new_boxes[valid], np.asarray(src['gt_bboxes'], np.float32)[keep]])
        results['gt_masks'] = BitmapMasks(
            np.concatenate([left[valid], src_masks.masks[keep].astype(np.uint8)]), h, w)
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if key in results and key in src:
                results[key] = np.concatenate([np.asarray(results[key])[valid],
                                               np.asarray(src[key])[keep]])
        return results
