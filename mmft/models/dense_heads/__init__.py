"""Dense (per-location) heads (registered in MODELS)."""
from .anchor_head import AnchorHead
from .base_dense_head import BaseDenseHead
from .retina_head import RetinaHead
from .rpn_head import RPNHead, unpack_gt_instances

__all__ = ['RPNHead', 'unpack_gt_instances', 'BaseDenseHead', 'AnchorHead', 'RetinaHead']
