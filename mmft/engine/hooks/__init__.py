"""Hooks that plug mmft into MMEngine's Runner; importing this package registers them."""
from .check_hooks import CheckInvalidLossHook, NumClassCheckHook
from .unfreeze_hook import GradualUnfreezeHook
from .visualization_hook import DetVisualizationHook

__all__ = ['DetVisualizationHook', 'GradualUnfreezeHook', 'NumClassCheckHook',
           'CheckInvalidLossHook']
