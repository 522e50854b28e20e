"""Single-stage detectors: backbone -> neck -> one dense head that predicts boxes directly.

Config layout (MMDetection 3.x): ``train_cfg`` and ``test_cfg`` go to the head
whole (``assigner``, ``sampler``, ``nms``, ``score_thr``, ...).

State-dict keys: ``backbone.*``, ``neck.*``, ``bbox_head.*``, as in MMDetection
checkpoints. The head's API: ``forward(feats)``, ``loss(feats, data_samples)``
and ``predict(feats, data_samples, rescale)`` returning one ``InstanceData`` per
image (``bboxes``, ``scores``, ``labels``[, ``masks``]).
"""
import copy
from typing import Dict, List, Optional, Tuple, Union

from torch import Tensor

from mmft.registry import MODELS
from mmft.structures import OptSampleList, SampleList
from ..layers.nms import check_nms_cfgs
from .base import BaseDetector, samples_from_inputs


@MODELS.register_module()
class SingleStageDetector(BaseDetector):
    """Backbone, optional neck, dense head (SSD uses this type directly).

    Args:
        backbone, neck, bbox_head: MODELS configs.
        train_cfg, test_cfg: handed to ``bbox_head``.
        data_preprocessor, init_cfg: see :class:`BaseDetector`.
    """

    def __init__(self,
                 backbone: Dict,
                 neck: Optional[Dict] = None,
                 bbox_head: Optional[Dict] = None,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # an NMS the head cannot run fails here, not at the first test image
        check_nms_cfgs(train_cfg, 'train_cfg')
        check_nms_cfgs(test_cfg, 'test_cfg')
        if bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs a bbox_head config')
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        bbox_head = copy.deepcopy(bbox_head)
        bbox_head.update(train_cfg=train_cfg, test_cfg=test_cfg)
        self.bbox_head = MODELS.build(bbox_head)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone maps, through the neck when there is one."""
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.with_neck else x

    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None):
        """The head's raw outputs (per-level class scores, box predictions, ...)."""
        return self.bbox_head.forward(self.extract_feat(batch_inputs))

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The head's losses (``loss_cls``, ``loss_bbox``, ...)."""
        return self.bbox_head.loss(self.extract_feat(batch_inputs), batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None,
                rescale: bool = True) -> SampleList:
        """Samples with ``pred_instances`` in ``ori_shape`` pixels with ``rescale``."""
        if batch_data_samples is None:
            batch_data_samples = samples_from_inputs(batch_inputs)
        x = self.extract_feat(batch_inputs)
        results_list = self.bbox_head.predict(x, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)
