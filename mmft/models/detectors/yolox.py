"""YOLOX: CSPDarknet + YOLOXPAFPN + YOLOXHead (MMDetection 3.x type and keys).

Multi-scale training happens in the data preprocessor (``BatchSyncRandomResize`` in its
``batch_augments``); the last epochs' switch (no Mosaic / MixUp, L1 loss on) is
``YOLOXModeSwitchHook``'s, and ``SyncNormHook`` keeps BN statistics equal across processes.
"""
from typing import ClassVar

from mmft.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class YOLOX(SingleStageDetector):
    """YOLOX (Ge et al., 2021): a :class:`SingleStageDetector` with the same arguments
    (backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg)."""

    finetune_preset: ClassVar[str] = 'yolox'
