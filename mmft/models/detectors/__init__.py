"""Detectors (registered in MODELS)."""
from .base import BaseDetector
from .two_stage import FasterRCNN, MaskRCNN, TwoStageDetector

__all__ = ['BaseDetector', 'TwoStageDetector', 'FasterRCNN', 'MaskRCNN']
