"""RetinaNet: ResNet + FPN (P3-P7) + RetinaHead (MMDetection 3.x type and keys)."""
from typing import ClassVar

from mmft.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class RetinaNet(SingleStageDetector):
    """RetinaNet (Lin et al., 2017); arguments as :class:`SingleStageDetector`."""

    finetune_preset: ClassVar[str] = 'retinanet'
