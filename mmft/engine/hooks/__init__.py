"""Hooks that plug mmft into MMEngine's Runner; importing this package registers them."""
from .check_hooks import CheckInvalidLossHook, NumClassCheckHook
from .checkpoint_hook import CheckpointHook
from .incremental_hook import IncrementalHook
from .pipeline_switch_hook import PipelineSwitchHook
from .schedule_check_hook import ScheduleCheckHook
from .unfreeze_hook import GradualUnfreezeHook
from .visualization_hook import DetVisualizationHook

__all__ = ['CheckpointHook', 'DetVisualizationHook', 'GradualUnfreezeHook', 'IncrementalHook',
           'ScheduleCheckHook', 'NumClassCheckHook', 'CheckInvalidLossHook', 'PipelineSwitchHook']
