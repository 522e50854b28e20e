"""ATSS: ResNet + FPN (P3-P7) + ATSSHead (MMDetection 3.x type and keys)."""
from typing import ClassVar

from mmft.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class ATSS(SingleStageDetector):
    """ATSS (Zhang et al., 2020); arguments as :class:`SingleStageDetector`."""

    finetune_preset: ClassVar[str] = 'atss'
