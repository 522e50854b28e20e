"""YOLOv3 head (MMDetection 3.x ``YOLOV3Head``: arguments, defaults, keys, losses).

Per level ``i`` (inputs deepest first, strides ``featmap_strides``): ``convs_bridge.{i}``
(3x3 ``ConvModule``) then ``convs_pred.{i}`` (1x1 conv) with ``A * (5 + C)`` outputs; per
anchor ``a`` the block ``[tx, ty, tw, th, objectness, class 0 .. C-1]`` at rows
``a * (5 + C) + k``. ``tx, ty`` and all scores go through a sigmoid.

Training: ``GridAssigner`` on the priors of the cell holding each gt's centre; losses
(summed over levels and images with MMDetection's configs' ``reduction='sum'``):
``loss_cls`` (BCE on the positives' one-hot classes, optionally smoothed), ``loss_conf``
(BCE on objectness over positives and negatives), ``loss_xy`` (BCE on the sigmoid-ed
centre) and ``loss_wh`` (MSE on log sizes) on the positives.

Inference: priors with objectness >= ``conf_thr``; the ``nms_pre`` best (prior, class)
pairs with class score > ``score_thr``; score = class score x objectness; per-class NMS.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures import SampleList
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule
from .dense_postprocess import bbox_post_process, empty_results, filter_scores_and_topk
from .rpn_head import unpack_gt_instances


def bias_init_with_prob(prior_prob: float) -> float:
    """The logit whose sigmoid is ``prior_prob``."""
    return float(-torch.log(torch.tensor((1 - prior_prob) / prior_prob)))


@MODELS.register_module()
class YOLOV3Head(BaseModule):
    """YOLOv3 head (see the module docstring).

    Args:
        num_classes: foreground classes.
        in_channels: channels of each input level (deepest first).
        out_channels: channels of each bridge conv.
        anchor_generator, bbox_coder: TASK_UTILS configs.
        featmap_strides: stride of each level.
        one_hot_smoother: label smoothing of the class targets.
        conv_cfg, norm_cfg, act_cfg: bridge conv configs.
        loss_cls, loss_conf, loss_xy, loss_wh: MODELS configs.
        train_cfg: ``assigner`` (GridAssigner), optional ``sampler``.
        test_cfg: ``nms_pre``, ``conf_thr``, ``score_thr``, ``nms``, ``min_bbox_size``,
            ``max_per_img``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int] = (1024, 512, 256),
                 anchor_generator: Dict = dict(
                     type='YOLOAnchorGenerator',
                     base_sizes=[[(116, 90), (156, 198), (373, 326)],
                                 [(30, 61), (62, 45), (59, 119)],
                                 [(10, 13), (16, 30), (33, 23)]],
                     strides=[32, 16, 8]),
                 bbox_coder: Dict = dict(type='YOLOBBoxCoder'),
                 featmap_strides: Sequence[int] = (32, 16, 8),
                 one_hot_smoother: float = 0.,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN', requires_grad=True),
                 act_cfg: Dict = dict(type='LeakyReLU', negative_slope=0.1),
                 loss_cls: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       loss_weight=1.0),
                 loss_conf: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                        loss_weight=1.0),
                 loss_xy: Dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                      loss_weight=1.0),
                 loss_wh: Dict = dict(type='MSELoss', loss_weight=1.0),
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not len(in_channels) == len(out_channels) == len(featmap_strides):
            raise ValueError(f'YOLOV3Head: in_channels {list(in_channels)}, out_channels '
                             f'{list(out_channels)} and featmap_strides {list(featmap_strides)} '
                             'need one entry per level')
        self.num_classes = num_classes
        self.in_channels = list(in_channels)
        self.out_channels = list(out_channels)
        self.featmap_strides = list(featmap_strides)
        self.one_hot_smoother = one_hot_smoother
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            sampler = train_cfg.get('sampler') or dict(type='PseudoSampler')
            self.sampler = TASK_UTILS.build(sampler, default_args=dict(context=self))
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_conf = MODELS.build(loss_conf)
        self.loss_xy = MODELS.build(loss_xy)
        self.loss_wh = MODELS.build(loss_wh)
        if len(self.prior_generator.num_base_priors) != len(self.featmap_strides):
            raise ValueError(f'YOLOV3Head: the anchor generator has '
                             f'{len(self.prior_generator.num_base_priors)} levels, '
                             f'featmap_strides {len(self.featmap_strides)}')
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self._init_layers()

    @property
    def num_levels(self) -> int:
        return len(self.featmap_strides)

    @property
    def num_attrib(self) -> int:
        """Outputs per anchor: 4 box, 1 objectness, ``num_classes`` class scores."""
        return 5 + self.num_classes

    def _init_layers(self) -> None:
        self.convs_bridge = nn.ModuleList()
        self.convs_pred = nn.ModuleList()
        for i in range(self.num_levels):
            self.convs_bridge.append(ConvModule(
                self.in_channels[i], self.out_channels[i], 3, padding=1, conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg, act_cfg=self.act_cfg))
            self.convs_pred.append(nn.Conv2d(self.out_channels[i],
                                             self.num_base_priors * self.num_attrib, 1))

    def init_weights(self) -> None:
        """Normal(0, 0.01) convs; objectness bias for ~8 objects on a 608 px image and the
        class bias at the 0.01 prior (as MMDetection), so new classes start there too."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for conv_pred, stride in zip(self.convs_pred, self.featmap_strides):
            bias = conv_pred.bias.data.view(self.num_base_priors, -1)
            bias[:, 4] = bias_init_with_prob(8 / (608 / stride)**2)
            bias[:, 5:] = bias_init_with_prob(0.01)

    def class_rows(self) -> Dict[str, ClassRows]:
        """Each level's ``convs_pred``: per anchor 5 class-free rows, then the classes."""
        rows: Dict[str, ClassRows] = {}
        for i in range(self.num_levels):
            rows.update(declare(f'convs_pred.{i}', ClassRows(
                self.num_classes, groups=self.num_base_priors, prefix=5)))
        return rows

    # ------------------------------------------------------------------ forward
    def forward(self, x: Sequence[Tensor]) -> Tuple[Tuple[Tensor, ...]]:
        """``(pred_maps,)``: per level ``(B, A * (5 + C), H, W)``."""
        if len(x) != self.num_levels:
            raise ValueError(f'YOLOV3Head has {self.num_levels} levels but got {len(x)} maps')
        return tuple(pred(bridge(feat)) for feat, bridge, pred
                     in zip(x, self.convs_bridge, self.convs_pred)),

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_cls``, ``loss_conf``, ``loss_xy``, ``loss_wh``: lists over levels."""
        gts, _, metas = unpack_gt_instances(batch_data_samples)
        return self.loss_by_feat(self(x)[0], gts, metas)

    def loss_by_feat(self, pred_maps: Sequence[Tensor], batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[list] = None) -> Dict[str, List[Tensor]]:
        if not hasattr(self, 'assigner'):
            raise RuntimeError('YOLOV3Head.loss needs train_cfg with an assigner (GridAssigner); '
                               'build the detector with train_cfg')
        device = pred_maps[0].device
        featmap_sizes = [tuple(p.shape[-2:]) for p in pred_maps]
        mlvl_anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        anchors = torch.cat(mlvl_anchors)
        strides = torch.cat([anchors.new_full((len(a),), float(s))
                             for a, s in zip(mlvl_anchors, self.featmap_strides)])
        target_maps, neg_maps = [], []
        for gt in batch_gt_instances:
            flags = torch.cat(self.prior_generator.responsible_flags(
                featmap_sizes, gt.bboxes, device))
            target, neg = self._targets_single(anchors, strides, flags, gt)
            target_maps.append(target)
            neg_maps.append(neg)
        sizes = [len(a) for a in mlvl_anchors]
        target_levels = torch.stack(target_maps).split(sizes, dim=1)
        neg_levels = torch.stack(neg_maps).split(sizes, dim=1)
        out = dict(loss_cls=[], loss_conf=[], loss_xy=[], loss_wh=[])
        for pred_map, target, neg in zip(pred_maps, target_levels, neg_levels):
            for name, value in zip(out, self._loss_single(pred_map, target, neg)):
                out[name].append(value)
        return out

    def _targets_single(self, anchors: Tensor, strides: Tensor, flags: Tensor,
                        gt: InstanceData) -> Tuple[Tensor, Tensor]:
        """``(N, 5 + C)`` targets and ``(N,)`` negative mask of one image's priors."""
        gt = InstanceData(bboxes=gt.bboxes.to(anchors), labels=gt.labels.to(anchors.device))
        pred = InstanceData(priors=anchors, responsible_flags=flags)
        sampling = self.sampler.sample(self.assigner.assign(pred, gt), pred, gt)
        target = anchors.new_zeros(anchors.size(0), self.num_attrib)
        pos = sampling.pos_inds
        target[pos, :4] = self.bbox_coder.encode(sampling.pos_priors, sampling.pos_gt_bboxes,
                                                 strides[pos])
        target[pos, 4] = 1
        one_hot = F.one_hot(gt.labels, num_classes=self.num_classes).float()
        if self.one_hot_smoother != 0:
            one_hot = one_hot * (1 - self.one_hot_smoother) + \
                self.one_hot_smoother / self.num_classes
        target[pos, 5:] = one_hot[sampling.pos_assigned_gt_inds]
        neg = anchors.new_zeros(anchors.size(0))
        neg[sampling.neg_inds] = 1
        return target, neg

    def _loss_single(self, pred_map: Tensor, target: Tensor,
                     neg: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        num_imgs = pred_map.size(0)
        pred = pred_map.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_attrib)
        pos_mask = target[..., 4]
        # an anchor cannot be both; clamp as MMDetection does if the assigner made it so
        pos_and_neg = (neg + pos_mask).clamp(max=1.)
        pos_mask = pos_mask.unsqueeze(-1)
        loss_cls = self.loss_cls(pred[..., 5:], target[..., 5:], weight=pos_mask)
        loss_conf = self.loss_conf(pred[..., 4], target[..., 4], weight=pos_and_neg)
        loss_xy = self.loss_xy(pred[..., :2], target[..., :2], weight=pos_mask)
        loss_wh = self.loss_wh(pred[..., 2:4], target[..., 2:4], weight=pos_mask)
        return loss_cls, loss_conf, loss_xy, loss_wh

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                rescale: bool = False) -> List[InstanceData]:
        """Detections per image: ``bboxes (K, 4)``, ``scores (K,)``, ``labels (K,)``."""
        metas = [s.metainfo for s in batch_data_samples]
        return self.predict_by_feat(self(x)[0], metas, rescale=rescale)

    def predict_by_feat(self, pred_maps: Sequence[Tensor], batch_img_metas: List[dict],
                        cfg: Optional[Dict] = None, rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        if not cfg or 'nms' not in cfg:
            raise ValueError("YOLOV3Head.predict needs test_cfg with 'nms' (and nms_pre, "
                             'score_thr, conf_thr, max_per_img)')
        num_imgs = len(batch_img_metas)
        featmap_sizes = [tuple(p.shape[-2:]) for p in pred_maps]
        mlvl_anchors = self.prior_generator.grid_priors(featmap_sizes, device=pred_maps[0].device)
        preds, strides = [], []
        for pred, stride in zip(pred_maps, self.featmap_strides):
            pred = pred.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_attrib)
            preds.append(torch.cat([pred[..., :2].sigmoid(), pred[..., 2:]], dim=-1))
            strides.append(pred.new_full((pred.size(1),), float(stride)))
        preds = torch.cat(preds, dim=1)
        strides = torch.cat(strides)[:, None]
        bboxes_all = self.bbox_coder.decode(torch.cat(mlvl_anchors), preds[..., :4], strides)
        objectness_all = preds[..., 4].sigmoid()
        scores_all = preds[..., 5:].sigmoid()
        results = []
        for bboxes, scores, objectness, meta in zip(bboxes_all, scores_all, objectness_all,
                                                     batch_img_metas):
            conf_thr = cfg.get('conf_thr', -1)
            if conf_thr > 0:
                keep = objectness >= conf_thr
                bboxes, scores, objectness = bboxes[keep], scores[keep], objectness[keep]
            kept, labels, idx = filter_scores_and_topk(scores, cfg.get('score_thr', 0),
                                                       cfg.get('nms_pre', -1))
            if kept.numel() == 0:
                results.append(empty_results(pred_maps[0].device))
                continue
            res = InstanceData(scores=kept, labels=labels, bboxes=bboxes[idx],
                               score_factors=objectness[idx])
            results.append(bbox_post_process(res, cfg, meta, rescale, 'YOLOV3Head', with_nms))
        return results
