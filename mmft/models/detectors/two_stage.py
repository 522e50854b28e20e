"""Two-stage detectors: backbone -> neck -> RPN proposals -> RoI head.

Config layout (MMDetection 3.x): ``train_cfg=dict(rpn=..., rpn_proposal=...,
rcnn=...)`` and ``test_cfg=dict(rpn=..., rcnn=...)``; the detector hands
``rpn`` / ``rcnn`` to its heads, and in training the RPN proposes with
``rpn_proposal`` (``test_cfg.rpn`` when absent).

State-dict keys: ``backbone.*``, ``neck.*``, ``rpn_head.*``,
``roi_head.bbox_head.*``, ``roi_head.mask_head.*`` (RoI extractors and the
data preprocessor hold no saved tensors), as in MMDetection checkpoints.
"""
import copy
from typing import Dict, List, Optional, Tuple, Union

from mmengine.logging import MMLogger
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.registry import MODELS
from mmft.structures import OptSampleList, SampleList
from ..layers.nms import check_nms_cfgs
from .base import BaseDetector, samples_from_inputs


def _sub_cfg(cfg: Optional[Dict], key: str) -> Optional[Dict]:
    return cfg.get(key, None) if cfg is not None else None


@MODELS.register_module()
class TwoStageDetector(BaseDetector):
    """Backbone, optional neck, optional RPN, RoI head.

    Args:
        backbone, neck, rpn_head, roi_head: MODELS configs.
        train_cfg: ``rpn``, ``rpn_proposal``, ``rcnn`` (see module docstring).
        test_cfg: ``rpn``, ``rcnn``.
        data_preprocessor, init_cfg: see :class:`BaseDetector`.
    """

    def __init__(self,
                 backbone: Dict,
                 neck: Optional[Dict] = None,
                 rpn_head: Optional[Dict] = None,
                 roi_head: Optional[Dict] = None,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # an NMS the heads cannot run fails here, not at the first test image
        check_nms_cfgs(train_cfg, 'train_cfg')
        check_nms_cfgs(test_cfg, 'test_cfg')
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        if rpn_head is not None:
            rpn_head = copy.deepcopy(rpn_head)
            if rpn_head.get('num_classes', 1) != 1:
                # the RPN scores objectness; MMDetection overrides the value the same way
                MMLogger.get_current_instance().warning(
                    f"rpn_head num_classes={rpn_head['num_classes']} is ignored: the RPN is "
                    'class-agnostic (num_classes=1)')
            rpn_head.update(num_classes=1, train_cfg=_sub_cfg(train_cfg, 'rpn'),
                            test_cfg=_sub_cfg(test_cfg, 'rpn'))
            self.rpn_head = MODELS.build(rpn_head)
        if roi_head is not None:
            roi_head = copy.deepcopy(roi_head)
            roi_head.update(train_cfg=_sub_cfg(train_cfg, 'rcnn'),
                            test_cfg=_sub_cfg(test_cfg, 'rcnn'))
            self.roi_head = MODELS.build(roi_head)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_rpn(self) -> bool:
        return getattr(self, 'rpn_head', None) is not None

    @property
    def with_roi_head(self) -> bool:
        return getattr(self, 'roi_head', None) is not None

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone maps, through the neck when there is one."""
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.with_neck else x

    def _proposals(self, x: Tuple[Tensor, ...],
                   batch_data_samples: SampleList) -> List[InstanceData]:
        """Given proposals (``data_sample.proposals``) or, without them, the RPN's."""
        if batch_data_samples[0].get('proposals', None) is not None:
            return [data_sample.proposals for data_sample in batch_data_samples]
        if not self.with_rpn:
            raise ValueError(f'{type(self).__name__} has no rpn_head, so each data sample needs '
                             '`proposals` (e.g. from LoadProposals)')
        return self.rpn_head.predict(x, batch_data_samples, rescale=False)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None
                 ) -> Tuple[Tuple[Tensor, ...]]:
        """``(roi_head outputs,)``: cls scores, box deltas[, mask logits] of the proposals."""
        if batch_data_samples is None:
            batch_data_samples = samples_from_inputs(batch_inputs)
        x = self.extract_feat(batch_inputs)
        rpn_results_list = self._proposals(x, batch_data_samples)
        return (self.roi_head.forward(x, rpn_results_list, batch_data_samples),)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """RPN losses (``loss_rpn_cls``, ``loss_rpn_bbox``) and RoI-head losses."""
        x = self.extract_feat(batch_inputs)
        losses = dict()
        if self.with_rpn:
            proposal_cfg = _sub_cfg(self.train_cfg, 'rpn_proposal') or \
                _sub_cfg(self.test_cfg, 'rpn')
            # the RPN treats every gt as one class itself, so the samples need no relabelled copy
            rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
                x, batch_data_samples, proposal_cfg=proposal_cfg)
            for key in list(rpn_losses):  # keep RPN and RoI-head loss names apart
                if 'loss' in key and 'rpn' not in key:
                    rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
            losses.update(rpn_losses)
        else:
            rpn_results_list = self._proposals(x, batch_data_samples)
        losses.update(self.roi_head.loss(x, rpn_results_list, batch_data_samples))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Samples with ``pred_instances``: ``bboxes``, ``scores``, ``labels`` (and ``masks``),
        in ``ori_shape`` pixels with ``rescale``."""
        x = self.extract_feat(batch_inputs)
        rpn_results_list = self._proposals(x, batch_data_samples)
        results_list = self.roi_head.predict(x, rpn_results_list, batch_data_samples,
                                             rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)


@MODELS.register_module()
class FasterRCNN(TwoStageDetector):
    """Faster R-CNN (Ren et al., 2015); with FPN in the shipped configs."""

    finetune_preset = 'faster_rcnn'


@MODELS.register_module()
class MaskRCNN(TwoStageDetector):
    """Mask R-CNN (He et al., 2017): Faster R-CNN whose RoI head also has a mask head."""

    finetune_preset = 'mask_rcnn'
