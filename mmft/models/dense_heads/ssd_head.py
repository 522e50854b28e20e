"""SSD head (MMDetection 3.x ``SSDHead``: arguments, defaults, keys, losses).

Per level ``i`` with ``A_i`` anchors (4 or 6): ``cls_convs.{i}`` outputs
``(B, A_i * (C + 1), H, W)`` softmax logits, classes then background LAST in each
anchor's block (row ``a * (C + 1) + c``); ``reg_convs.{i}`` outputs ``(B, A_i * 4, H, W)``
deltas. A plain SSD has one 3x3 conv per branch (keys ``cls_convs.{i}.0.*``); SSDLite
(``use_depthwise``) has a depthwise 3x3 ``ConvModule`` then a 1x1 conv (``.0.conv``,
``.0.bn``, ``.1``); ``stacked_convs`` adds ``ConvModule`` s in front.

Training: each anchor is assigned (``MaxIoUAssigner``, every anchor kept), softmax
cross-entropy per anchor; all positives plus the ``neg_pos_ratio * P`` negatives of largest
loss (hard negative mining, per image) count, divided by the number of positives in the
batch; smooth-L1 (``smoothl1_beta``) on the positives' deltas.

Inference: per level the softmax scores without background, the ``nms_pre`` best
(anchor, class) pairs above ``score_thr``, decoded, then per-class NMS and ``max_per_img``.
(MMDetection 3.3.0's own SSDHead cannot run this step: it never sets the ``loss_cls`` that
its shared predict path reads; here ``loss_cls`` is set and used by the loss.)
"""
import copy
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS, TASK_UTILS
from mmft.structures.class_rows import ClassRows, declare
from ..layers import ConvModule
from ..losses import smooth_l1_loss
from ..layers.depthwise_separable_conv import DepthwiseSeparableConvModule
from .anchor_head import AnchorHead
from .base_dense_head import BaseDenseHead
from .dense_postprocess import bbox_post_process, empty_results, filter_scores_and_topk


@MODELS.register_module()
class SSDHead(AnchorHead):
    """SSD / SSDLite head (see the module docstring); targets are AnchorHead's.

    Args:
        num_classes: foreground classes.
        in_channels: channels of each input level.
        stacked_convs: ``ConvModule`` s before each predictor (0 in SSD).
        feat_channels: their channels.
        use_depthwise: SSDLite's depthwise 3x3 + 1x1 predictors.
        conv_cfg, norm_cfg, act_cfg: configs of the stacked / depthwise convs.
        anchor_generator, bbox_coder: TASK_UTILS configs.
        reg_decoded_bbox: regress decoded boxes.
        train_cfg: ``assigner``, ``sampler``, ``neg_pos_ratio``, ``smoothl1_beta``.
        test_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``min_bbox_size``, ``max_per_img``.
        init_cfg: MMDetection's default (Xavier-uniform convs, zero bias).
    """

    #: ``finetune.exclude=['ssd']`` means this head's class-row layers
    finetune_preset: ClassVar[str] = 'ssd'

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Sequence[int] = (512, 1024, 512, 256, 256, 256),
                 stacked_convs: int = 0,
                 feat_channels: int = 256,
                 use_depthwise: bool = False,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = None,
                 anchor_generator: Dict = dict(
                     type='SSDAnchorGenerator', scale_major=False, input_size=300,
                     strides=[8, 16, 32, 64, 100, 300],
                     ratios=([2], [2, 3], [2, 3], [2, 3], [2], [2]),
                     basesize_ratio_range=(0.1, 0.9)),
                 bbox_coder: Dict = dict(type='DeltaXYWHBBoxCoder', clip_border=True,
                                         target_means=[.0, .0, .0, .0],
                                         target_stds=[1.0, 1.0, 1.0, 1.0]),
                 reg_decoded_bbox: bool = False,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = dict(type='Xavier', layer='Conv2d',
                                                 distribution='uniform', bias=0)) -> None:
        # AnchorHead's layers and defaults are not SSD's: only its target code is shared
        BaseDenseHead.__init__(self, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.in_channels = list(in_channels)
        self.stacked_convs = stacked_convs
        self.feat_channels = feat_channels
        self.use_depthwise = use_depthwise
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
        self.cls_out_channels = num_classes + 1  # background last
        self.use_sigmoid_cls = False
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.num_base_priors = self.prior_generator.num_base_priors
        if len(self.in_channels) != len(self.num_base_priors):
            raise ValueError(f'SSDHead: {len(self.in_channels)} in_channels but the anchor '
                             f'generator has {len(self.num_base_priors)} levels')
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.reg_decoded_bbox = reg_decoded_bbox
        # per-anchor softmax loss; the hard negative mining picks which anchors count
        self.loss_cls = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=False,
                                          reduction='none'))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            sampler = train_cfg.get('sampler') or dict(type='PseudoSampler')
            self.sampler = TASK_UTILS.build(sampler, default_args=dict(context=self))
        self._init_layers()

    def _init_layers(self) -> None:
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        conv = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        kernel, pad = (1, 0) if self.use_depthwise else (3, 1)
        for channels, num_priors in zip(self.in_channels, self.num_base_priors):
            cls_layers: List[nn.Module] = []
            reg_layers: List[nn.Module] = []
            in_c = channels
            for _ in range(self.stacked_convs):
                cls_layers.append(conv(in_c, self.feat_channels, 3, padding=1, **cfg))
                reg_layers.append(conv(in_c, self.feat_channels, 3, padding=1, **cfg))
                in_c = self.feat_channels
            if self.use_depthwise:
                cls_layers.append(ConvModule(in_c, in_c, 3, padding=1, groups=in_c, **cfg))
                reg_layers.append(ConvModule(in_c, in_c, 3, padding=1, groups=in_c, **cfg))
            cls_layers.append(nn.Conv2d(in_c, num_priors * self.cls_out_channels, kernel,
                                        padding=pad))
            reg_layers.append(nn.Conv2d(in_c, num_priors * 4, kernel, padding=pad))
            self.cls_convs.append(nn.Sequential(*cls_layers))
            self.reg_convs.append(nn.Sequential(*reg_layers))

    def class_rows(self) -> Dict[str, ClassRows]:
        """Each level's class predictor: ``A_i`` blocks of classes then background."""
        rows: Dict[str, ClassRows] = {}
        for i, num_priors in enumerate(self.num_base_priors):
            last = len(self.cls_convs[i]) - 1
            rows.update(declare(f'cls_convs.{i}.{last}',
                                ClassRows(self.num_classes, groups=num_priors,
                                          background='last', activation='softmax')))
        return rows

    # ------------------------------------------------------------------ forward
    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level ``(B, A_i * (C + 1), H, W)`` logits and ``(B, A_i * 4, H, W)`` deltas."""
        if len(x) != len(self.cls_convs):
            raise ValueError(f'SSDHead has {len(self.cls_convs)} levels (in_channels) but got '
                             f'{len(x)} feature maps')
        cls_scores = [conv(feat) for feat, conv in zip(x, self.cls_convs)]
        bbox_preds = [conv(feat) for feat, conv in zip(x, self.reg_convs)]
        return cls_scores, bbox_preds

    # ------------------------------------------------------------------ training
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[list] = None) -> Dict[str, List[Tensor]]:
        """SSD's losses (see the module docstring), one entry per image."""
        if not hasattr(self, 'assigner'):
            raise RuntimeError('SSDHead.loss needs train_cfg (assigner, neg_pos_ratio, '
                               'smoothl1_beta); build the detector with train_cfg')
        num_imgs = len(batch_img_metas)
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        anchors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device))
        labels, label_weights, bbox_targets, bbox_weights, _, avg_factor = self.get_targets(
            anchors, featmap_sizes, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore)
        all_cls = torch.cat([s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels)
                             for s in cls_scores], 1)
        all_reg = torch.cat([b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
                             for b in bbox_preds], 1)
        labels, label_weights = labels.view(num_imgs, -1), label_weights.view(num_imgs, -1)
        # one loss over the whole batch, then per image sums: indexing each image out of the
        # batch tensors would make autograd build (and add up) a batch-sized gradient per image
        loss_all = self.loss_cls(all_cls.reshape(-1, self.cls_out_channels),
                                 labels.reshape(-1)).view(num_imgs, -1) * label_weights
        counted = self._counted_anchors(loss_all.detach(), labels)
        loss_cls = (loss_all * counted).sum(1) / avg_factor
        bbox_pred = all_reg.reshape(-1, 4)
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.repeat(num_imgs, 1), bbox_pred)
        loss_bbox = smooth_l1_loss(bbox_pred, bbox_targets, bbox_weights,
                                   beta=self.train_cfg['smoothl1_beta'], reduction='none')
        loss_bbox = loss_bbox.view(num_imgs, -1).sum(1) / avg_factor
        return dict(loss_cls=list(loss_cls[:, None].unbind(0)), loss_bbox=list(loss_bbox.unbind(0)))

    def _counted_anchors(self, loss_all: Tensor, labels: Tensor) -> Tensor:
        """``(B, N)`` 0/1: each image's positives and its ``neg_pos_ratio * P`` negatives of
        largest loss (hard negative mining)."""
        is_pos = (labels >= 0) & (labels < self.num_classes)
        counted = is_pos.to(loss_all.dtype)
        for i in range(labels.size(0)):
            neg = (labels[i] == self.num_classes).nonzero(as_tuple=False).view(-1)
            num_neg = min(int(self.train_cfg['neg_pos_ratio'] * int(is_pos[i].sum())),
                          neg.numel())
            counted[i, neg[loss_all[i, neg].topk(num_neg)[1]]] = 1.0
        return counted

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        batch_img_metas: List[dict], cfg: Optional[Dict] = None,
                        rescale: bool = False, with_nms: bool = True) -> List[InstanceData]:
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        if not cfg or 'nms' not in cfg:
            raise ValueError("SSDHead.predict needs test_cfg with 'nms' (and nms_pre, "
                             'score_thr, max_per_img); build the detector with test_cfg')
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        priors = self.prior_generator.grid_priors(featmap_sizes, dtype=cls_scores[0].dtype,
                                                  device=cls_scores[0].device)
        results = []
        for img_id, meta in enumerate(batch_img_metas):
            boxes, scores, labels = [], [], []
            for level, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
                cls = cls[img_id].permute(1, 2, 0).reshape(-1, self.cls_out_channels)
                reg = reg[img_id].permute(1, 2, 0).reshape(-1, 4)
                probs = cls.softmax(-1)[:, :-1]
                kept, lab, idx = filter_scores_and_topk(probs, cfg.get('score_thr', 0),
                                                        cfg.get('nms_pre', -1))
                boxes.append(self.bbox_coder.decode(priors[level][idx], reg[idx],
                                                    max_shape=meta['img_shape'][:2]))
                scores.append(kept)
                labels.append(lab)
            res = InstanceData(bboxes=torch.cat(boxes), scores=torch.cat(scores),
                               labels=torch.cat(labels))
            if len(res) == 0:
                results.append(empty_results(cls_scores[0].device))
                continue
            results.append(bbox_post_process(res, cfg, meta, rescale, 'SSDHead', with_nms))
        return results
