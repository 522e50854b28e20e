"""RTMDet-Ins head (MMDetection 3.x ``RTMDetInsSepBNHead`` arguments, keys and outputs).

Keys, per level ``n`` (``k = pred_kernel_size``, ``F = feat_channels``):

- ``cls_convs.{n}.{i}`` (``stacked_convs`` 3x3 ConvModules, the conv shared across levels
  with ``share_conv``, the BN per level) and ``reg_convs.{n}.{i}``: in MMDetection's
  RTMDet-Ins the regression tower *is* the classification tower (the same modules are
  registered under both names), so a checkpoint holds the same tensors under both prefixes;
  kept so that its checkpoints load key for key and compute what they computed there;
- ``kernel_convs.{n}.{i}`` (never shared across levels);
- ``rtm_cls.{n} (C, F, k, k)``, ``rtm_reg.{n} (4, F, k, k)``,
  ``rtm_kernel.{n} (G, F, k, k)`` with ``G`` the dynamic-conv parameters below, and
  ``rtm_obj.{n}`` only with ``with_objectness``;
- ``mask_head.fusion_conv (I, L * I, 1, 1)`` (``I = in_channels``, ``L`` levels),
  ``mask_head.stacked_convs.{0..3}`` (3x3 ConvModules, ``I`` then ``F`` channels) and
  ``mask_head.projection (num_prototypes, F, 1, 1)``.

Outputs: per level ``cls_scores (B, C, H, W)`` logits and ``bbox_preds (B, 4, H, W)``
distances in pixels (``relu`` of the conv times the stride), per level
``kernel_preds (B, G, H, W)``, and ``mask_feat (B, num_prototypes, H0, W0)`` at the first
(stride-8) level.

Masks: each instance's parameters ``G`` are split into ``num_dyconvs`` 1x1 convs
(``(num_prototypes + 2) -> dyconv_channels -> ... -> 1``, weights first, then biases, ReLU
between); their input is ``mask_feat`` with two channels in front: the offset of every
stride-8 cell from the instance's prior, divided by ``8 * prior stride``. The output is the
instance's mask logits at stride 8. Training: Dice loss on the positives of the box
assignment, the logits upsampled to ``mask_loss_stride`` and the gt masks sampled at the
centres of the ``mask_loss_stride`` cells. Test: after box NMS the logits are upsampled to
the input, rescaled to the original image with ``rescale``, and thresholded at
``test_cfg.mask_thr_binary``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS
from ..layers import ConvModule
from .dense_postprocess import bbox_post_process, filter_scores_and_topk
from .rtmdet_head import (RTMDetSepBNHead, _reduce_mean, inverse_sigmoid,
                          sigmoid_geometric_mean)


class MaskFeatModule(BaseModule):
    """Prototype masks of RTMDet-Ins: every level resized to the first, concatenated, fused
    by a 1x1 conv, ``stacked_convs`` 3x3 convs, projected to ``num_prototypes`` channels.

    Args:
        in_channels: channels of every input level.
        feat_channels: channels of the stacked convs.
        stacked_convs: 3x3 ConvModules.
        num_levels: input levels fused.
        num_prototypes: output channels.
        act_cfg, norm_cfg: of the stacked convs.
    """

    def __init__(self, in_channels: int, feat_channels: int = 256, stacked_convs: int = 4,
                 num_levels: int = 3, num_prototypes: int = 8,
                 act_cfg: Dict = dict(type='ReLU', inplace=True),
                 norm_cfg: Dict = dict(type='BN')) -> None:
        super().__init__(init_cfg=None)
        self.num_levels = num_levels
        self.fusion_conv = nn.Conv2d(num_levels * in_channels, in_channels, 1)
        self.stacked_convs = nn.Sequential(*[
            ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1,
                       norm_cfg=norm_cfg, act_cfg=act_cfg) for i in range(stacked_convs)])
        self.projection = nn.Conv2d(feat_channels, num_prototypes, 1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """``(B, num_prototypes, H0, W0)`` from the first ``num_levels`` levels."""
        size = feats[0].shape[-2:]
        fused = [feats[0]] + [F.interpolate(f, size=size, mode='bilinear', align_corners=False)
                              for f in feats[1:self.num_levels]]
        return self.projection(self.stacked_convs(self.fusion_conv(torch.cat(fused, 1))))


@MODELS.register_module()
class RTMDetInsSepBNHead(RTMDetSepBNHead):
    """RTMDet-Ins head: RTMDet's box head plus per-instance dynamic mask convs.

    Args:
        num_classes, in_channels: as :class:`RTMDetSepBNHead`.
        share_conv: the class (= box) tower convs are shared across levels.
        with_objectness: an objectness branch (off in RTMDet-Ins).
        norm_cfg, act_cfg: of every tower and of the mask feature module.
        pred_kernel_size: kernel of the prediction convs.
        num_prototypes: channels of ``mask_feat``.
        dyconv_channels: hidden channels of the dynamic convs.
        num_dyconvs: dynamic 1x1 convs per instance (>= 2).
        mask_loss_stride: resolution (input pixels per cell) of the mask loss; divides 8.
        loss_mask: ``DiceLoss`` config.
        **kwargs: the other :class:`RTMDetHead` arguments (``feat_channels``,
            ``stacked_convs``, ``anchor_generator``, ``loss_cls``, ``train_cfg``, ...);
            ``test_cfg`` also needs ``mask_thr_binary``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 share_conv: bool = True,
                 with_objectness: bool = False,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = dict(type='SiLU', inplace=True),
                 pred_kernel_size: int = 1,
                 num_prototypes: int = 8,
                 dyconv_channels: int = 8,
                 num_dyconvs: int = 3,
                 mask_loss_stride: int = 4,
                 loss_mask: Dict = dict(type='DiceLoss', loss_weight=2.0, eps=5e-6,
                                        reduction='mean'),
                 **kwargs) -> None:
        for name in ('exp_on_reg', 'use_depthwise'):
            if kwargs.pop(name, False):
                raise ValueError(f'RTMDetInsSepBNHead has no {name}=True (MMDetection\'s '
                                 'RTMDet-Ins regresses relu(distance) with plain convs); '
                                 f'drop {name} from bbox_head')
        if num_dyconvs < 2:
            raise ValueError(f'RTMDetInsSepBNHead num_dyconvs must be >= 2, got {num_dyconvs}')
        self.num_prototypes = num_prototypes
        self.dyconv_channels = dyconv_channels
        self.num_dyconvs = num_dyconvs
        self.mask_loss_stride = mask_loss_stride
        super().__init__(num_classes, in_channels, share_conv=share_conv, use_depthwise=False,
                         norm_cfg=norm_cfg, act_cfg=act_cfg, pred_kernel_size=pred_kernel_size,
                         exp_on_reg=False, with_objectness=with_objectness, **kwargs)
        if self.strides[0] % mask_loss_stride:
            raise ValueError(f'RTMDetInsSepBNHead mask_loss_stride={mask_loss_stride} must '
                             f'divide the first stride {self.strides[0]}')
        self.loss_mask = MODELS.build(loss_mask)

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        super()._init_layers()  # with share_conv, the class convs are shared across levels
        # MMDetection builds the regression tower as the classification tower itself
        self.reg_convs = nn.ModuleList(list(self.cls_convs))
        # dynamic convs (P + 2) -> D -> ... -> D -> 1: all weights, then all biases
        self.dyconv_chans = [self.num_prototypes + 2] + \
            [self.dyconv_channels] * (self.num_dyconvs - 1) + [1]
        self.weight_nums = [cin * cout for cin, cout in zip(self.dyconv_chans[:-1],
                                                            self.dyconv_chans[1:])]
        self.bias_nums = self.dyconv_chans[1:]
        self.num_gen_params = sum(self.weight_nums) + sum(self.bias_nums)
        self.kernel_convs = nn.ModuleList()
        self.rtm_kernel = nn.ModuleList()
        for _ in self.strides:
            self.kernel_convs.append(nn.ModuleList([
                self._tower_conv(self.in_channels if i == 0 else self.feat_channels)
                for i in range(self.stacked_convs)]))
            self.rtm_kernel.append(self._pred_conv(self.num_gen_params))
        if not self.with_objectness:
            self.rtm_obj = nn.ModuleList()  # MMDetection keeps the (empty) list
        self.mask_head = MaskFeatModule(self.in_channels, self.feat_channels, stacked_convs=4,
                                        num_levels=len(self.strides),
                                        num_prototypes=self.num_prototypes,
                                        act_cfg=self.act_cfg, norm_cfg=self.norm_cfg)

    def init_weights(self) -> None:
        """RTMDet's init (Normal(0.01) convs, focal-prior class bias) and a box bias of 1
        (MMDetection's): the first boxes reach a stride to each side of their prior, where
        ``relu`` of a zero-centred output would collapse many of them to points."""
        super().init_weights()
        for conv in self.rtm_reg:
            nn.init.constant_(conv.bias, 1.0)

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Sequence[Tensor]
                ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], Tensor]:
        """``cls_scores``, ``bbox_preds``, ``kernel_preds`` per level and ``mask_feat``."""
        self._check_levels(feats)
        mask_feat = self.mask_head(feats)
        cls_scores, bbox_preds, kernel_preds = [], [], []
        for idx, (x, stride) in enumerate(zip(feats, self.strides)):
            # one pass: the box tower is the class tower (module docstring); MMDetection runs
            # it twice, which only updates the BN running statistics twice per step
            feat = x
            for layer in self.cls_convs[idx]:
                feat = layer(feat)
            kernel_feat = x
            for layer in self.kernel_convs[idx]:
                kernel_feat = layer(kernel_feat)
            cls_score = self.rtm_cls[idx](feat)
            if self.with_objectness:
                cls_score = inverse_sigmoid(sigmoid_geometric_mean(
                    cls_score, self.rtm_obj[idx](feat)))
            cls_scores.append(cls_score)
            bbox_preds.append(F.relu(self.rtm_reg[idx](feat)) * stride)
            kernel_preds.append(self.rtm_kernel[idx](kernel_feat))
        return cls_scores, bbox_preds, kernel_preds, mask_feat

    def mask_logits(self, mask_feat: Tensor, kernels: Tensor, priors: Tensor) -> Tensor:
        """``(K, H0, W0)`` mask logits of K instances of one image.

        Args:
            mask_feat: ``(num_prototypes, H0, W0)``.
            kernels: ``(K, num_gen_params)`` dynamic conv parameters.
            priors: ``(K, 4)`` ``(x, y, stride_w, stride_h)`` of the instances' priors.
        """
        num = priors.size(0)
        h, w = mask_feat.shape[-2:]
        if num == 0:
            return mask_feat.new_zeros((0, h, w))
        cells = self.prior_generator.single_level_grid_priors(
            (h, w), 0, dtype=mask_feat.dtype, device=mask_feat.device)  # (HW, 2)
        offsets = priors[:, None, :2] - cells[None]  # (K, HW, 2)
        offsets = offsets / (priors[:, None, 2:3] * 8)
        x = torch.cat([offsets.permute(0, 2, 1),
                       mask_feat.reshape(1, -1, h * w).expand(num, -1, -1)], 1)  # (K, P+2, HW)
        params = kernels.split(self.weight_nums + self.bias_nums, dim=1)
        chans = self.dyconv_chans
        for i in range(self.num_dyconvs):
            weight = params[i].reshape(num, chans[i + 1], chans[i])
            bias = params[self.num_dyconvs + i].reshape(num, chans[i + 1], 1)
            x = torch.baddbmm(bias, weight, x)
            if i < self.num_dyconvs - 1:
                x = F.relu(x)
        return x.reshape(num, h, w)

    # ------------------------------------------------------------------ loss
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     kernel_preds: List[Tensor], mask_feat: Tensor,
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List] = None) -> Dict:
        """``loss_cls`` and ``loss_bbox`` per level (as RTMDet) and ``loss_mask``."""
        for i, gt in enumerate(batch_gt_instances):
            if 'masks' not in gt:
                raise KeyError(f'RTMDetInsSepBNHead needs gt masks: sample {i} has no '
                               "gt_instances.masks (LoadAnnotations(with_mask=True))")
        losses, positives, flat_priors = self._cls_bbox_losses(
            cls_scores, bbox_preds, batch_gt_instances, batch_img_metas)
        num_imgs = len(batch_img_metas)
        flat_kernels = torch.cat([k.permute(0, 2, 3, 1).reshape(num_imgs, -1,
                                                                self.num_gen_params)
                                  for k in kernel_preds], 1)
        losses['loss_mask'] = self._mask_loss(mask_feat, flat_kernels, flat_priors, positives,
                                              batch_gt_instances)
        return losses

    def _mask_loss(self, mask_feat: Tensor, flat_kernels: Tensor, flat_priors: Tensor,
                   positives: List[Tuple[Tensor, Tensor]],
                   batch_gt_instances: List[InstanceData]) -> Tensor:
        h, w = mask_feat.shape[-2:]
        stride = self.strides[0]
        logits, targets = [], []
        for feat, kernels, (pos, gt_inds), gt in zip(mask_feat, flat_kernels, positives,
                                                     batch_gt_instances):
            if len(pos) == 0:
                continue
            logits.append(self.mask_logits(feat, kernels[pos], flat_priors[pos]))
            masks = gt.masks
            masks = masks.to_tensor(dtype=torch.bool, device=feat.device) \
                if hasattr(masks, 'to_tensor') else masks.to(feat.device).bool()
            # the masks cover the image (or its own padding): pad or crop to the feature grid
            masks = masks[gt_inds, :h * stride, :w * stride]
            masks = F.pad(masks, (0, w * stride - masks.shape[-1], 0,
                                  h * stride - masks.shape[-2]))
            half = self.mask_loss_stride // 2
            targets.append(masks[:, half::self.mask_loss_stride, half::self.mask_loss_stride])
        num_pos = sum(len(p[0]) for p in positives)
        avg_factor = _reduce_mean(mask_feat.new_tensor(float(num_pos))).clamp_(min=1).item()
        if num_pos == 0:
            return mask_feat.sum() * 0
        logits = F.interpolate(torch.cat(logits)[None], scale_factor=stride //
                               self.mask_loss_stride, mode='bilinear', align_corners=False)[0]
        return self.loss_mask(logits, torch.cat(targets), avg_factor=avg_factor)

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        kernel_preds: List[Tensor], mask_feat: Tensor,
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[Dict] = None, rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        """Per image ``bboxes``, ``scores``, ``labels`` and ``masks`` (bool ``(K, H, W)`` in
        ``ori_shape`` pixels with ``rescale``, else ``img_shape``)."""
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None or 'mask_thr_binary' not in cfg:
            raise ValueError('RTMDetInsSepBNHead.predict needs test_cfg with nms_pre, '
                             "score_thr, nms=dict(type='nms', iou_threshold=...), "
                             'max_per_img and mask_thr_binary (e.g. 0.5)')
        if not with_nms:
            raise ValueError('RTMDetInsSepBNHead.predict needs with_nms=True: masks are '
                             'computed for the boxes NMS keeps')
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        mlvl_priors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device,
            with_stride=True)
        results = []
        for img_id, img_meta in enumerate(batch_img_metas):
            kept = [self._top_priors(cls[img_id].detach(), box[img_id].detach(),
                                     ker[img_id].detach(), priors, cfg)
                    for cls, box, ker, priors in zip(cls_scores, bbox_preds, kernel_preds,
                                                      mlvl_priors)]
            fields = {k: torch.cat([lvl[k] for lvl in kept]) for k in kept[0]}
            fields['bboxes'] = self.bbox_coder.decode(fields['priors'][:, :2],
                                                      fields.pop('distances'),
                                                      max_shape=img_meta['img_shape'][:2])
            inst = bbox_post_process(InstanceData(**fields), cfg, img_meta, rescale,
                                     type(self).__name__, with_nms=True)
            inst.masks = self._masks(inst, mask_feat[img_id].detach(), img_meta, cfg, rescale)
            del inst.kernels, inst.priors
            results.append(inst)
        return results

    def _top_priors(self, cls_score: Tensor, bbox_pred: Tensor, kernel_pred: Tensor,
                    priors: Tensor, cfg: Dict) -> Dict[str, Tensor]:
        scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
        scores, labels, keep = filter_scores_and_topk(scores, cfg.get('score_thr', 0),
                                                      cfg.get('nms_pre', -1))
        return dict(scores=scores, labels=labels, priors=priors[keep],
                    distances=bbox_pred.permute(1, 2, 0).reshape(-1, 4)[keep],
                    kernels=kernel_pred.permute(1, 2, 0).reshape(-1, self.num_gen_params)[keep])

    def _masks(self, inst: InstanceData, mask_feat: Tensor, img_meta: dict, cfg: Dict,
               rescale: bool) -> Tensor:
        if len(inst) == 0:
            h, w = img_meta['ori_shape' if rescale else 'img_shape'][:2]
            return torch.zeros((0, h, w), dtype=torch.bool, device=mask_feat.device)
        logits = F.interpolate(self.mask_logits(mask_feat, inst.kernels, inst.priors)[None],
                               scale_factor=self.strides[0], mode='bilinear',
                               align_corners=False)
        if rescale:
            # from the (padded) input back to the original image, then drop the padding
            sx, sy = img_meta['scale_factor'][:2]
            ori_h, ori_w = img_meta['ori_shape'][:2]
            size = (math.ceil(logits.shape[-2] / sy), math.ceil(logits.shape[-1] / sx))
            logits = F.interpolate(logits, size=size, mode='bilinear',
                                   align_corners=False)[..., :ori_h, :ori_w]
        else:
            h, w = img_meta['img_shape'][:2]
            logits = logits[..., :h, :w]
        return logits[0].sigmoid() > cfg['mask_thr_binary']

