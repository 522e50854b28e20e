"""Detectors (registered in MODELS)."""
from .base import BaseDetector
from .single_stage import SingleStageDetector
from .two_stage import FasterRCNN, MaskRCNN, TwoStageDetector
from .yolov3 import YOLOV3

__all__ = ['BaseDetector', 'SingleStageDetector', 'TwoStageDetector', 'FasterRCNN', 'MaskRCNN',
           'YOLOV3']
