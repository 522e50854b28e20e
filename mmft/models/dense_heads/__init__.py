"""Dense (per-location) heads (registered in MODELS)."""
from .rpn_head import RPNHead, unpack_gt_instances

__all__ = ['RPNHead', 'unpack_gt_instances']
