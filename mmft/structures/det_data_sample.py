"""The data sample that travels between datasets, models and metrics.

Conventions (shared by every part of mmft):
- boxes are ``(x1, y1, x2, y2)`` in absolute pixels of the image they belong to
  (``img_shape`` after transforms; ``ori_shape`` for ``pred_instances`` after
  ``rescale=True``), as float32 tensors of shape ``(N, 4)``;
- labels are ``int64`` class indices in ``[0, num_classes)``, ordered as the
  dataset's ``metainfo['classes']``; there is no background label in data;
- ``gt_instances.masks`` is a :class:`BitmapMasks` or :class:`PolygonMasks`;
  ``pred_instances.masks`` is a bool tensor ``(N, H, W)``;
- shapes in metainfo are ``(h, w)``; ``scale_factor`` is ``(w_scale, h_scale)``.
"""
from typing import List, Optional

from mmengine.structures import BaseDataElement, InstanceData


class DetDataSample(BaseDataElement):
    """A detection sample: image meta plus ground-truth and predicted instances.

    Fields: ``gt_instances``, ``ignored_instances`` (crowd / ignored boxes),
    ``proposals`` (RPN output) and ``pred_instances`` (final detections), each
    an :class:`~mmengine.structures.InstanceData`.
    """

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def ignored_instances(self) -> InstanceData:
        return self._ignored_instances

    @ignored_instances.setter
    def ignored_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_ignored_instances', dtype=InstanceData)

    @ignored_instances.deleter
    def ignored_instances(self) -> None:
        del self._ignored_instances

    @property
    def proposals(self) -> InstanceData:
        return self._proposals

    @proposals.setter
    def proposals(self, value: InstanceData) -> None:
        self.set_field(value, '_proposals', dtype=InstanceData)

    @proposals.deleter
    def proposals(self) -> None:
        del self._proposals

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances


SampleList = List[DetDataSample]
OptSampleList = Optional[SampleList]
