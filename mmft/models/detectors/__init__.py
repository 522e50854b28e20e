"""Detectors (registered in MODELS)."""
from .atss import ATSS
from .base import BaseDetector
from .fcos import FCOS
from .retinanet import RetinaNet
from .single_stage import SingleStageDetector
from .two_stage import FasterRCNN, MaskRCNN, TwoStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector', 'TwoStageDetector', 'FasterRCNN', 'MaskRCNN',
           'RetinaNet', 'FCOS', 'ATSS']
