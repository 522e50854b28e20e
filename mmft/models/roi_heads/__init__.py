"""RoI heads of two-stage detectors (registered in MODELS)."""
from .bbox_heads import (BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead,
                         multiclass_nms)
from .cascade_roi_head import CascadeRoIHead
from .mask_heads import FCNMaskHead, paste_masks
from .roi_extractors import RoIAlign, SingleRoIExtractor
from .standard_roi_head import StandardRoIHead

__all__ = [
    'StandardRoIHead', 'SingleRoIExtractor', 'RoIAlign', 'BBoxHead', 'ConvFCBBoxHead',
    'Shared2FCBBoxHead', 'Shared4Conv1FCBBoxHead', 'multiclass_nms', 'FCNMaskHead',
    'paste_masks', 'CascadeRoIHead'
]
