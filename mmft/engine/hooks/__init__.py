"""Hooks that plug mmft into MMEngine's Runner; importing this package registers them."""
from .check_hooks import CheckInvalidLossHook, NumClassCheckHook
from .checkpoint_hook import CheckpointHook
from .incremental_hook import IncrementalHook
from .pipeline_switch_hook import PipelineSwitchHook
from .schedule_check_hook import ScheduleCheckHook
from .sync_norm_hook import SyncNormHook
from .unfreeze_hook import GradualUnfreezeHook
from .visualization_hook import DetVisualizationHook
from .yolox_mode_switch_hook import YOLOXModeSwitchHook

__all__ = ['CheckpointHook', 'DetVisualizationHook', 'GradualUnfreezeHook', 'IncrementalHook',
           'ScheduleCheckHook', 'NumClassCheckHook', 'CheckInvalidLossHook', 'PipelineSwitchHook',
           'YOLOXModeSwitchHook', 'SyncNormHook']
