"""RTMDet: CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead, or RTMDetInsSepBNHead for RTMDet-Ins
(MMDetection 3.x type and keys)."""
from typing import ClassVar, Dict, List, Optional, Union

import torch
import torch.distributed as dist

from mmft.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class RTMDet(SingleStageDetector):
    """RTMDet (Lyu et al., 2022).

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg:
            as :class:`SingleStageDetector`.
        use_syncbn: in a multi-process run, turn every BatchNorm into SyncBatchNorm.
    """

    finetune_preset: ClassVar[str] = 'rtmdet'

    def __init__(self,
                 backbone: Dict,
                 neck: Dict,
                 bbox_head: Dict,
                 train_cfg: Optional[Dict] = None,
                 test_cfg: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None,
                 use_syncbn: bool = True) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if use_syncbn and dist.is_available() and dist.is_initialized() \
                and dist.get_world_size() > 1:
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self)
