"""FCOS: ResNet + FPN (P3-P7) + FCOSHead (MMDetection 3.x type and keys)."""
from typing import ClassVar

from mmft.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class FCOS(SingleStageDetector):
    """FCOS (Tian et al., 2019); arguments as :class:`SingleStageDetector`."""

    finetune_preset: ClassVar[str] = 'fcos'
