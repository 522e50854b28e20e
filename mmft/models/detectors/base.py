"""Base class of mmft's detectors: MMEngine's ``BaseModel`` with the three forward modes.

``forward(inputs, data_samples, mode)`` takes what ``DetDataPreprocessor``
returns (``inputs`` a float ``(B, 3, H, W)`` batch, ``data_samples`` a list of
:class:`DetDataSample`) and, by ``mode``:

- ``'loss'``: a dict of losses (keys containing ``loss`` are summed by MMEngine);
- ``'predict'``: the samples, each with ``pred_instances`` (see
  :mod:`mmft.structures.det_data_sample` for coordinates and dtypes);
- ``'tensor'``: the raw head outputs, no post-processing.
"""
from abc import abstractmethod
from typing import ClassVar, Dict, List, Optional, Tuple, Union

from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from mmft.structures import DetDataSample, OptSampleList, SampleList

_MODES = ('loss', 'predict', 'tensor')


class BaseDetector(BaseModel):
    """Detector base: dispatches ``forward`` by mode, attaches predictions to samples.

    Args:
        data_preprocessor: MODELS config (or module) of the data preprocessor.
        init_cfg: MMEngine initialisation config.

    Class attributes:
        finetune_preset: the name ``finetune.exclude`` accepts for this family's
            class-dependent layers (``'mask_rcnn'``); the layers themselves are what
            the heads declare (``class_rows()``), so the preset needs no table.
    """

    finetune_preset: ClassVar[Optional[str]] = None

    def __init__(self, data_preprocessor: Optional[Union[Dict, 'BaseModel']] = None,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    @property
    def with_neck(self) -> bool:
        return getattr(self, 'neck', None) is not None

    @property
    def with_shared_head(self) -> bool:
        return hasattr(self, 'roi_head') and self.roi_head.with_shared_head

    @property
    def with_bbox(self) -> bool:
        return (hasattr(self, 'roi_head') and self.roi_head.with_bbox) or \
            getattr(self, 'bbox_head', None) is not None

    @property
    def with_mask(self) -> bool:
        return (hasattr(self, 'roi_head') and self.roi_head.with_mask) or \
            getattr(self, 'mask_head', None) is not None

    def forward(self, inputs: Tensor, data_samples: OptSampleList = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], SampleList, Tuple]:
        """Losses, predictions or raw outputs of a preprocessed batch (see module docstring)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'{type(self).__name__}.forward mode must be one of {_MODES}, '
                           f'got {mode!r}')

    @abstractmethod
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of a batch."""

    @abstractmethod
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """The samples with ``pred_instances``."""

    @abstractmethod
    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None):
        """Raw head outputs."""

    @abstractmethod
    def extract_feat(self, batch_inputs: Tensor):
        """Backbone (and neck) features."""

    @staticmethod
    def add_pred_to_datasample(data_samples: SampleList,
                               results_list: List[InstanceData]) -> SampleList:
        """Set each sample's ``pred_instances``; returns the samples."""
        if len(data_samples) != len(results_list):
            raise ValueError(f'{len(results_list)} results for {len(data_samples)} samples')
        for data_sample, results in zip(data_samples, results_list):
            data_sample.pred_instances = results
        return data_samples


def samples_from_inputs(batch_inputs: Tensor) -> SampleList:
    """Bare samples for a batch given without any: every image fills the batch shape."""
    shape = tuple(batch_inputs.shape[-2:])
    return [DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                        batch_input_shape=shape, scale_factor=(1., 1.)))
            for _ in range(batch_inputs.size(0))]
