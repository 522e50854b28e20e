"""YOLOv3 (MMDetection 3.x ``YOLOV3``): a single-stage detector with a Darknet or
MobileNetV2 backbone, ``YOLOV3Neck`` and ``YOLOV3Head``."""
from typing import ClassVar, Dict, List, Optional, Union

from mmft.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class YOLOV3(SingleStageDetector):
    """YOLOv3; arguments as :class:`SingleStageDetector` (a neck is required)."""

    #: ``finetune.exclude=['yolov3']`` means the heads' ``convs_pred`` layers
    finetune_preset: ClassVar[str] = 'yolov3'

    def __init__(self, backbone: Dict, neck: Dict, bbox_head: Dict,
                 train_cfg: Optional[Dict] = None, test_cfg: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
