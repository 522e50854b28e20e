"""Moving knowledge from a pretrained checkpoint into a new model: plain functions."""
from .class_transfer import BUILTIN_SYNONYMS, ClassMatch, match_classes
from .config import FinetuneConfig, resolve_num_classes
from .freeze import freeze, parameter_counts, unfreeze
from .io import (LoadedCheckpoint, UnsafeCheckpointError, read_checkpoint,
                 setup_checkpoint_io, torch_load_safely)
from .load import load_pretrained, plan_load
from .patterns import EXCLUDE_PRESETS
from .report import LoadReport

__all__ = [
    'LoadedCheckpoint', 'UnsafeCheckpointError', 'read_checkpoint', 'setup_checkpoint_io',
    'torch_load_safely', 'BUILTIN_SYNONYMS', 'ClassMatch', 'match_classes', 'FinetuneConfig',
    'resolve_num_classes', 'freeze', 'unfreeze', 'parameter_counts', 'load_pretrained',
    'plan_load', 'EXCLUDE_PRESETS', 'LoadReport'
]
