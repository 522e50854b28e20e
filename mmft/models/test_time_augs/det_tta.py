"""DetTTAModel: run a detector on several views of each image (``TestTimeAug``) and merge.

Each view's ``pred_instances`` are in the original image's pixels (the detector rescales)
but still flipped as the view was; merging flips them back using ``ori_shape``, pools every
view's detections and keeps the survivors of class-wise NMS, highest scores first, at most
``max_per_img`` (MMDetection's merge). Instance masks, which MMDetection's DetTTAModel
refuses, are flipped back as well and kept with their boxes.
"""
from typing import List, Optional, Sequence

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData
from torch import Tensor
from torchvision.ops import batched_nms, nms

from mmft.registry import MODELS
from mmft.structures import DetDataSample


def flip_boxes_back(boxes: Tensor, img_shape: Sequence[int], direction: Optional[str]) -> Tensor:
    """Boxes ``(N, 4)`` of an image of ``img_shape`` ``(h, w)`` mirrored by ``direction``."""
    h, w = img_shape[:2]
    out = boxes.clone()
    if direction in ('horizontal', 'diagonal'):
        out[:, 0], out[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
    if direction in ('vertical', 'diagonal'):
        out[:, 1], out[:, 3] = h - boxes[:, 3], h - boxes[:, 1]
    if direction not in (None, 'horizontal', 'vertical', 'diagonal'):
        raise ValueError(f'DetTTAModel: unknown flip_direction {direction!r}')
    return out


def _flip_masks_back(masks: Tensor, direction: Optional[str]) -> Tensor:
    dims = {'horizontal': [-1], 'vertical': [-2], 'diagonal': [-2, -1]}.get(direction)
    return masks.flip(dims) if dims else masks


@MODELS.register_module()
class DetTTAModel(BaseTTAModel):
    """Merge the predictions of a detector's test-time-augmented views by NMS.

    Args:
        tta_cfg: ``dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)``;
            ``nms.class_agnostic=True`` runs one NMS over all classes.
        module: The detector (config or module); see MMEngine's ``BaseTTAModel``.
        data_preprocessor: Replaces the detector's own when given.
    """

    def __init__(self, tta_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        tta_cfg = dict(tta_cfg or dict(nms=dict(type='nms', iou_threshold=0.5),
                                       max_per_img=100))
        nms_cfg = dict(tta_cfg.get('nms') or {})
        if nms_cfg.get('type', 'nms') != 'nms' or 'iou_threshold' not in nms_cfg:
            raise ValueError(f'DetTTAModel tta_cfg.nms={nms_cfg}: mmft merges with '
                             "dict(type='nms', iou_threshold=...) (soft-NMS is not supported)")
        self.tta_cfg = tta_cfg

    def merge_preds(self, data_samples_list: List[List[DetDataSample]]) -> List[DetDataSample]:
        """One merged sample per image; the inner lists hold its views."""
        return [self._merge_single_sample(views) for views in data_samples_list]

    def _merge_single_sample(self, views: List[DetDataSample]) -> DetDataSample:
        boxes, scores, labels, masks = [], [], [], []
        with_masks = 'masks' in views[0].pred_instances
        for view in views:
            pred, meta = view.pred_instances, view.metainfo
            direction = meta.get('flip_direction') if meta.get('flip', False) else None
            boxes.append(flip_boxes_back(pred.bboxes, meta['ori_shape'], direction))
            scores.append(pred.scores)
            labels.append(pred.labels)
            if with_masks:
                if 'masks' not in pred or not isinstance(pred.masks, Tensor):
                    raise TypeError('DetTTAModel merges masks given as (N, H, W) tensors in '
                                    'every view; a view has none or another type')
                masks.append(_flip_masks_back(pred.masks, direction))
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        # an unflipped view, when there is one, carries the image's own ground truth (metrics
        # that read gt from the samples need it)
        merged = next((v for v in views if not v.metainfo.get('flip', False)), views[0])
        if boxes.numel() == 0:
            return merged
        nms_cfg = self.tta_cfg['nms']
        if nms_cfg.get('class_agnostic', False):
            keep = nms(boxes, scores, nms_cfg['iou_threshold'])
        else:
            keep = batched_nms(boxes, scores, labels, nms_cfg['iou_threshold'])
        keep = keep[:self.tta_cfg.get('max_per_img', 100)]
        results = InstanceData(bboxes=boxes[keep], scores=scores[keep], labels=labels[keep])
        if with_masks:
            results.masks = torch.cat(masks)[keep]
        # the merged sample describes the unflipped image
        merged.set_metainfo(dict(flip=False, flip_direction=None))
        merged.pred_instances = results
        return merged
