"""Detectors (registered in MODELS)."""
from .base import BaseDetector
from .cascade_rcnn import CascadeRCNN
from .rpn import RPN
from .single_stage import SingleStageDetector
from .two_stage import FasterRCNN, MaskRCNN, TwoStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector', 'TwoStageDetector', 'FasterRCNN', 'MaskRCNN',
           'CascadeRCNN', 'RPN']
