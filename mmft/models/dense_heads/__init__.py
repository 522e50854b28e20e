"""Dense (per-location) heads (registered in MODELS)."""
from .rpn_head import RPNHead, unpack_gt_instances
from .ssd_head import SSDHead
from .yolov3_head import YOLOV3Head

__all__ = ['RPNHead', 'unpack_gt_instances', 'SSDHead', 'YOLOV3Head']
