"""Cascade R-CNN (Cai & Vasconcelos, 2018): a two-stage detector whose RoI head is a cascade.

Everything but the RoI head is :class:`TwoStageDetector`'s; the config's
``roi_head`` is a :class:`~mmft.models.roi_heads.CascadeRoIHead` and
``train_cfg.rcnn`` a list with one assigner / sampler config per stage.
Cascade Mask R-CNN is this class with mask heads in the RoI head, as in
MMDetection (one type for both).
"""
from mmft.registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class CascadeRCNN(TwoStageDetector):
    """Cascade (Mask) R-CNN; ``finetune.exclude=['cascade_rcnn']`` names the class rows of
    every stage's ``fc_cls`` (and ``fc_reg`` when class-specific) and mask ``conv_logits``."""

    finetune_preset = 'cascade_rcnn'
