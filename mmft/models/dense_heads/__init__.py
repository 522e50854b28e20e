"""Dense (per-location) heads (registered in MODELS)."""
from .anchor_head import AnchorHead
from .atss_head import ATSSHead
from .base_dense_head import BaseDenseHead
from .fcos_head import FCOSHead
from .retina_head import RetinaHead
from .rpn_head import RPNHead, unpack_gt_instances
from .rtmdet_head import RTMDetHead, RTMDetSepBNHead
from .rtmdet_ins_head import MaskFeatModule, RTMDetInsSepBNHead
from .ssd_head import SSDHead
from .yolov3_head import YOLOV3Head
from .yolox_head import YOLOXHead

__all__ = ['RPNHead', 'unpack_gt_instances', 'BaseDenseHead', 'AnchorHead', 'RetinaHead',
           'FCOSHead', 'ATSSHead', 'SSDHead', 'YOLOV3Head', 'RTMDetHead', 'RTMDetSepBNHead',
           'RTMDetInsSepBNHead', 'MaskFeatModule',
           'YOLOXHead']
