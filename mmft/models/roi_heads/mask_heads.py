"""Mask heads: RoI features -> per-class mask logits; mask targets; masks pasted into images.

Conventions (MMDetection 3.x; checkpoints and mmft/finetune rely on them):
- keys: ``convs.{i}.conv`` (3x3 ``ConvModule`` s), ``upsample`` (a stride-2
  ``ConvTranspose2d`` for ``'deconv'``), ``conv_logits`` (1x1 conv with
  ``num_classes`` output channels, 1 when class-agnostic; no background).
- ``mask_pred``: ``(K, num_classes, 2h, 2w)`` logits for ``(K, C, h, w)`` RoI
  features (14 -> 28 in Mask R-CNN).
- targets: ``(P, mask_size, mask_size)`` 0/1 floats, the positive's gt mask
  cropped to the positive proposal (clipped to the mask image) and resampled
  by ``gt_masks.crop_and_resize`` (RoIAlign); ``gt_instances.masks`` is a
  :class:`BitmapMasks`, :class:`PolygonMasks` or a bool/uint8 ``(N, H, W)`` tensor.
- predictions: ``pred_instances.masks`` bool ``(N, H, W)``, ``(H, W) = ori_shape``
  with ``rescale`` (the boxes are rescaled alongside), else ``img_shape``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor
from torch.nn.modules.utils import _pair

from mmft.registry import MODELS
from mmft.structures import BitmapMasks, clip_boxes
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule
from ..task_modules import SamplingResult

_UPSAMPLE_TYPES = (None, 'deconv', 'nearest', 'bilinear')
# pixels a paste group may sample: its grid, probabilities and result take ~16 bytes each
_MAX_GROUP_PIXELS = 2**26
# what one more group costs, in sampled pixels: a few ops on CPU, kernel launches on GPU
_GROUP_COST_PIXELS = {'cpu': 2**14}
_DEFAULT_GROUP_COST_PIXELS = 2**20


def paste_masks(masks: Tensor, boxes: Tensor, img_h: int, img_w: int,
                threshold: float = 0.5, num_chunks: Optional[int] = None) -> Tensor:
    """Resample fixed-size mask probabilities into their boxes of an image.

    Each mask is sampled bilinearly at the pixel centres of the region its box
    covers plus a pixel of margin, never over the whole image, the same on CPU
    and GPU. Boxes are pasted
    in groups: each box's region is laid at the corner of a canvas the size of
    the group's largest region and the group is sampled by one ``grid_sample``;
    every pixel is computed as if its box were pasted alone, so grouping never
    changes a mask.

    Args:
        masks: ``(N, h, w)`` probabilities.
        boxes: ``(N, 4)`` boxes in the target image's pixels.
        img_h, img_w: target image size.
        threshold: ``>= 0`` gives bool masks ``prob >= threshold``; negative
            gives uint8 probabilities scaled to 0..255 (for visualisation).
        num_chunks: number of groups (boxes sorted by region size); default:
            a box joins the current group while that adds fewer sampled pixels
            than its own region plus what one more call costs.

    Returns:
        ``(N, img_h, img_w)`` bool (or uint8) masks; empty outside the boxes.
    """
    n = masks.size(0)
    binary = threshold >= 0
    out = torch.zeros((n, img_h, img_w), device=masks.device,
                      dtype=torch.bool if binary else torch.uint8)
    if n == 0 or img_h == 0 or img_w == 0:
        return out
    boxes = boxes.float()
    lo = (boxes[:, :2].floor() - 1).clamp(min=0)
    hi = torch.minimum(boxes[:, 2:].ceil() + 1, boxes.new_tensor([img_w, img_h]))
    size = (hi - lo).clamp(min=0).long()  # (w, h) of each region; 0 outside the image
    regions = torch.cat([lo.long(), size], dim=1).tolist()
    for group in _paste_groups(regions, num_chunks, masks.device.type):
        inds = torch.tensor(group, device=masks.device)
        w = max(regions[i][2] for i in group)
        h = max(regions[i][3] for i in group)
        probs = _sample_regions(masks[inds], boxes[inds], lo[inds], h, w)
        probs = probs >= threshold if binary else (probs * 255).to(torch.uint8)
        for j, i in enumerate(group):
            x0, y0, rw, rh = regions[i]
            out[i, y0:y0 + rh, x0:x0 + rw] = probs[j, :rh, :rw]
    return out


def _paste_groups(regions: List[List[int]], num_groups: Optional[int],
                  device_type: str) -> List[List[int]]:
    """Indices of the boxes with a non-empty region, grouped, largest regions first."""
    order = sorted((i for i, (_, _, w, h) in enumerate(regions) if w > 0 and h > 0),
                   key=lambda i: -regions[i][2] * regions[i][3])
    if num_groups is not None:
        step = max(1, math.ceil(len(order) / max(1, num_groups)))
        return [order[k:k + step] for k in range(0, len(order), step)]
    cost = _GROUP_COST_PIXELS.get(device_type, _DEFAULT_GROUP_COST_PIXELS)
    groups, w, h = [], 0, 0
    for i in order:
        rw, rh = regions[i][2], regions[i][3]
        if groups:
            n = len(groups[-1]) + 1
            padded = n * max(w, rw) * max(h, rh)
            # join while the group samples less than pasting the box alone would cost
            if padded <= _MAX_GROUP_PIXELS and padded - (n - 1) * w * h <= rw * rh + cost:
                groups[-1].append(i)
                w, h = max(w, rw), max(h, rh)
                continue
        groups.append([i])
        w, h = rw, rh
    return groups


def _sample_regions(masks: Tensor, boxes: Tensor, lo: Tensor, h: int, w: int) -> Tensor:
    """``(n, h, w)``: mask i stretched over its box, sampled at the centres of the pixels
    ``lo[i] + (0..w-1, 0..h-1)`` (its region; the rest of the canvas is never used)."""
    cols = torch.arange(w, device=masks.device, dtype=torch.float32)
    rows = torch.arange(h, device=masks.device, dtype=torch.float32)
    xs = lo[:, :1] + cols[None] + 0.5  # the same float values as arange(x0, x1) + 0.5
    ys = lo[:, 1:] + rows[None] + 0.5
    bx0, by0, bx1, by1 = boxes.unbind(dim=1)
    # grid_sample's [-1, 1] spans the box edges (align_corners=False); a zero-size box
    # maps every pixel far outside, i.e. an empty mask
    gx = (xs - bx0[:, None]) / (bx1 - bx0).clamp(min=1e-6)[:, None] * 2 - 1
    gy = (ys - by0[:, None]) / (by1 - by0).clamp(min=1e-6)[:, None] * 2 - 1
    # written in place: a stack of the two expanded planes makes one more full-size copy
    grid = gx.new_empty((masks.size(0), h, w, 2))
    grid[..., 0] = gx[:, None, :]
    grid[..., 1] = gy[:, :, None]
    return F.grid_sample(masks[:, None].float(), grid, align_corners=False)[:, 0]


@MODELS.register_module()
class FCNMaskHead(BaseModule):
    """Mask R-CNN's mask head: convs, a 2x upsample, a 1x1 per-class predictor.

    Args:
        num_convs: 3x3 convs before the upsample.
        roi_feat_size: RoI feature side (kept for config compatibility).
        in_channels: RoI feature channels.
        conv_kernel_size: kernel of the convs.
        conv_out_channels: channels of the convs and the upsample.
        num_classes: foreground classes.
        class_agnostic: predict one mask per RoI instead of one per class.
        upsample_cfg: ``dict(type='deconv'|'nearest'|'bilinear'|None, scale_factor=2)``.
        conv_cfg, norm_cfg: of the convs.
        predictor_cfg: ``dict(type='Conv')``.
        loss_mask: MODELS config, ``CrossEntropyLoss(use_mask=True)``.
    """

    def __init__(self,
                 num_convs: int = 4,
                 roi_feat_size: int = 14,
                 in_channels: int = 256,
                 conv_kernel_size: int = 3,
                 conv_out_channels: int = 256,
                 num_classes: int = 80,
                 class_agnostic: bool = False,
                 upsample_cfg: Dict = dict(type='deconv', scale_factor=2),
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 predictor_cfg: Dict = dict(type='Conv'),
                 loss_mask: Dict = dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0),
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(init_cfg)
        upsample_cfg = dict(upsample_cfg)
        self.upsample_method = upsample_cfg.get('type')
        if self.upsample_method not in _UPSAMPLE_TYPES:
            raise ValueError(f'FCNMaskHead upsample_cfg type {self.upsample_method!r} is not '
                             f'supported; use one of {list(_UPSAMPLE_TYPES)}')
        if predictor_cfg.get('type', 'Conv') not in ('Conv', 'Conv2d'):
            raise ValueError(f"FCNMaskHead predictor_cfg must be dict(type='Conv'), "
                             f'got {dict(predictor_cfg)!r}')
        self.num_convs = num_convs
        self.roi_feat_size = _pair(roi_feat_size)
        self.in_channels = in_channels
        self.conv_kernel_size = conv_kernel_size
        self.conv_out_channels = conv_out_channels
        self.scale_factor = upsample_cfg.get('scale_factor', 2)
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.loss_mask = MODELS.build(loss_mask)

        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels,
                       conv_kernel_size, padding=(conv_kernel_size - 1) // 2,
                       conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for i in range(num_convs))
        last_channels = conv_out_channels if num_convs > 0 else in_channels
        if self.upsample_method is None:
            self.upsample = None
        elif self.upsample_method == 'deconv':
            self.upsample = nn.ConvTranspose2d(last_channels, conv_out_channels,
                                               self.scale_factor, stride=self.scale_factor)
            last_channels = conv_out_channels
        else:
            self.upsample = nn.Upsample(
                scale_factor=self.scale_factor, mode=self.upsample_method,
                align_corners=None if self.upsample_method == 'nearest' else False)
        self.conv_logits = nn.Conv2d(last_channels, 1 if class_agnostic else num_classes, 1)
        self.relu = nn.ReLU(inplace=True)

    def init_weights(self) -> None:
        """Kaiming (fan_out) for the upsample and predictor; the convs init themselves."""
        super().init_weights()
        for m in (self.upsample, self.conv_logits):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.constant_(m.bias, 0)

    def class_rows(self) -> Dict[str, ClassRows]:
        """``conv_logits``: one channel a class (none when class-agnostic)."""
        if self.class_agnostic:
            return {}
        return declare('conv_logits', ClassRows(self.num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """``(K, C, h, w)`` RoI features -> ``(K, num_classes, 2h, 2w)`` logits."""
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return self.conv_logits(x)

    # ------------------------------------------------------------------ training
    def get_targets(self, sampling_results: List[SamplingResult],
                    batch_gt_instances: List[InstanceData], rcnn_train_cfg: Dict) -> Tensor:
        """``(P, mask_size, mask_size)`` targets of all positives (see module docstring)."""
        if rcnn_train_cfg is None or 'mask_size' not in rcnn_train_cfg:
            raise KeyError('FCNMaskHead needs mask_size in the R-CNN train_cfg, '
                           'e.g. train_cfg.rcnn.mask_size=28')
        mask_size = _pair(rcnn_train_cfg['mask_size'])
        binarize = not rcnn_train_cfg.get('soft_mask_target', False)
        return torch.cat([
            self._get_targets_single(res.pos_priors, res.pos_assigned_gt_inds, gt, mask_size,
                                     binarize)
            for res, gt in zip(sampling_results, batch_gt_instances)])

    @staticmethod
    def _get_targets_single(proposals: Tensor, gt_inds: Tensor, gt_instances: InstanceData,
                            mask_size: Tuple[int, int], binarize: bool) -> Tensor:
        if proposals.size(0) == 0:
            return proposals.new_zeros((0, *mask_size))
        masks = gt_instances.get('masks', None)
        if masks is None:
            raise KeyError('FCNMaskHead needs gt_instances.masks for its targets; load the '
                           "annotations with masks (LoadAnnotations(with_mask=True))")
        if isinstance(masks, Tensor):
            masks = BitmapMasks(masks.detach().cpu().numpy(), *masks.shape[-2:])
        if len(masks) != len(gt_instances.bboxes):
            raise ValueError(f'gt_instances has {len(gt_instances.bboxes)} boxes but '
                             f'{len(masks)} masks; give one mask per box')
        boxes = clip_boxes(proposals.detach(), (masks.height, masks.width))
        crops = masks.crop_and_resize(boxes, mask_size, inds=gt_inds, device=proposals.device,
                                      binarize=binarize).to_ndarray()
        return torch.from_numpy(crops).to(device=proposals.device, dtype=torch.float32)

    def loss_and_target(self, mask_preds: Tensor, sampling_results: List[SamplingResult],
                        batch_gt_instances: List[InstanceData], rcnn_train_cfg: Dict) -> dict:
        """``dict(loss_mask={'loss_mask': ...}, mask_targets=(P, S, S))``; 0 without positives."""
        mask_targets = self.get_targets(sampling_results, batch_gt_instances, rcnn_train_cfg)
        labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        if mask_preds.size(0) == 0:
            loss = mask_preds.sum() * 0
        else:
            loss = self.loss_mask(mask_preds, mask_targets,
                                  torch.zeros_like(labels) if self.class_agnostic else labels)
        return dict(loss_mask=dict(loss_mask=loss), mask_targets=mask_targets)

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, mask_preds: Sequence[Tensor], results_list: List[InstanceData],
                        batch_img_metas: List[dict], rcnn_test_cfg: Dict,
                        rescale: bool = False, activate_map: bool = False
                        ) -> List[InstanceData]:
        """Add ``masks`` to each image's detections (in place, also returned).

        Args:
            mask_preds: per image ``(N_i, num_classes, S, S)`` logits
                (probabilities with ``activate_map``).
            results_list: per image detections with ``bboxes`` in ``img_shape``
                pixels and ``labels``; with ``rescale`` the boxes are divided by
                ``scale_factor`` here.
            batch_img_metas: ``img_shape``, ``ori_shape``, ``scale_factor``.
            rcnn_test_cfg: ``mask_thr_binary``.
            rescale: masks (and boxes) at ``ori_shape`` instead of ``img_shape``.
        """
        threshold = rcnn_test_cfg['mask_thr_binary']
        for preds, results, meta in zip(mask_preds, results_list, batch_img_metas):
            bboxes = results.bboxes
            if rescale:
                if meta.get('scale_factor') is None or meta.get('ori_shape') is None:
                    raise KeyError("FCNMaskHead.predict(rescale=True) needs 'scale_factor' and "
                                   "'ori_shape' in metainfo")
                bboxes = bboxes / bboxes.new_tensor(meta['scale_factor']).repeat(2)
                img_h, img_w = meta['ori_shape'][:2]
            else:
                img_h, img_w = meta['img_shape'][:2]
            probs = preds if activate_map else preds.sigmoid()
            channel = torch.zeros_like(results.labels) if self.class_agnostic \
                else results.labels
            probs = probs[torch.arange(len(probs), device=probs.device), channel]
            results.bboxes = bboxes
            results.masks = paste_masks(probs, bboxes, int(img_h), int(img_w), threshold)
        return results_list
