"""Detectors (registered in MODELS)."""
from .base import BaseDetector
from .retinanet import RetinaNet
from .single_stage import SingleStageDetector
from .two_stage import FasterRCNN, MaskRCNN, TwoStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector', 'TwoStageDetector', 'FasterRCNN', 'MaskRCNN',
           'RetinaNet']
