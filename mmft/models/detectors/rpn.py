"""The Region Proposal Network alone as a detector: class-agnostic proposals.

Config (MMDetection 3.x): ``type='RPN'`` with ``backbone``, ``neck``,
``rpn_head`` (an ``RPNHead``), ``train_cfg=dict(rpn=...)`` and
``test_cfg=dict(rpn=...)``. The head is stored as ``bbox_head``, so the
state-dict keys are ``backbone.*``, ``neck.*`` and ``bbox_head.rpn_{conv,cls,reg}.*``,
as in MMDetection's RPN checkpoints. (A Faster R-CNN checkpoint holds the same
head under ``rpn_head.*``.)

``predict`` gives each sample ``pred_instances`` with the proposals:
``bboxes (K, 4)``, ``scores (K,)`` objectness, ``labels (K,)`` zeros, sorted by
score, in ``ori_shape`` pixels with ``rescale``. Evaluate them with
``CocoMetric(metric='proposal_fast')`` (recall at 100 / 300 / 1000 proposals).
"""
import copy
from typing import Dict, List, Optional, Union

from mmengine.logging import MMLogger
from torch import Tensor

from mmft.registry import MODELS
from mmft.structures import SampleList
from .base import BaseDetector
from .single_stage import SingleStageDetector


@MODELS.register_module()
class RPN(SingleStageDetector):
    """Backbone, optional neck, RPN head: proposals only.

    Args:
        backbone, neck, rpn_head: MODELS configs.
        train_cfg: ``rpn`` (assigner, sampler, ...), handed to the head.
        test_cfg: ``rpn`` (nms_pre, max_per_img, nms, min_bbox_size).
        data_preprocessor, init_cfg: see :class:`BaseDetector`.
    """

    def __init__(self,
                 backbone: Dict,
                 neck: Optional[Dict],
                 rpn_head: Dict,
                 train_cfg: Optional[Dict],
                 test_cfg: Dict,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None,
                 **kwargs) -> None:
        # SingleStageDetector's __init__ builds a bbox_head from its own config key
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if test_cfg is None or 'rpn' not in test_cfg:
            raise ValueError("RPN needs test_cfg=dict(rpn=dict(nms_pre=..., max_per_img=..., "
                             "nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0))")
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        rpn_head = copy.deepcopy(rpn_head)
        if rpn_head.get('num_classes', 1) != 1:
            MMLogger.get_current_instance().warning(
                f"RPN rpn_head num_classes={rpn_head['num_classes']} is ignored: proposals are "
                'class-agnostic (num_classes=1)')
        rpn_head.update(num_classes=1,
                        train_cfg=train_cfg.get('rpn') if train_cfg is not None else None,
                        test_cfg=test_cfg['rpn'])
        self.bbox_head = MODELS.build(rpn_head)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_rpn_cls`` and ``loss_rpn_bbox`` (the head counts every gt as one class)."""
        return self.bbox_head.loss(self.extract_feat(batch_inputs), batch_data_samples)
