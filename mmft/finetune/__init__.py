"""Moving knowledge from a pretrained checkpoint into a new model: plain functions."""
from .class_transfer import BUILTIN_SYNONYMS, ClassMatch, match_classes
from .config import FinetuneConfig, resolve_num_classes
from .freeze import freeze, parameter_counts, unfreeze
from .load import load_checkpoint, load_pretrained, plan_load
from .patterns import known_presets, model_presets
from .report import LoadReport

__all__ = [
    'BUILTIN_SYNONYMS', 'ClassMatch', 'match_classes', 'FinetuneConfig', 'resolve_num_classes',
    'freeze', 'unfreeze', 'parameter_counts', 'load_checkpoint', 'load_pretrained', 'plan_load',
    'known_presets', 'model_presets', 'LoadReport'
]
