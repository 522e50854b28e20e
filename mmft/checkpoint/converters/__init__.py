"""Foreign checkpoints (torchvision, Detectron2, Caffe) -> mmft's layout.

Each converter returns a :class:`ConversionResult`: an mmft-layout state_dict,
meta with ``source_format`` and ``classes``, and the source keys that did not
convert. :func:`mmft.checkpoint.read_checkpoint` detects the format of a file
(:func:`detect_file_format`, then :func:`detect_state_dict_format`) and converts it.
"""
import os.path as osp
from pathlib import Path
from typing import Any, Mapping, Union

from .base import ConversionResult
from .caffe import CaffeLayer, convert_caffe, read_caffemodel
from .coco_classes import COCO_CATEGORY_IDS, COCO_CLASSES, coco_id_to_index, unused_coco_ids
from .detectron2 import (convert_detectron2, is_caffe2_naming, is_detectron2_naming,
                         load_detectron2_pkl)
from .swin import convert_swin_official, is_swin_official
from .torchvision import (convert_torchvision, is_torchvision_classification,
                          is_torchvision_detection, is_torchvision_mobilenet_v2,
                          is_torchvision_regnet, is_torchvision_ssd, is_torchvision_swin)

FORMATS = ('auto', 'torchvision', 'detectron2', 'caffe')


def detect_state_dict_format(state_dict: Mapping[str, Any]) -> Union[str, None]:
    """``'torchvision'`` / ``'detectron2'`` / ``'swin'`` (official Swin release) from a
    dict's keys, or ``None`` (mmft or unknown)."""
    keys = list(state_dict)
    if is_torchvision_detection(keys) or is_torchvision_classification(keys):
        return 'torchvision'
    if is_torchvision_swin(keys) or is_torchvision_regnet(keys):
        return 'torchvision'
    if is_swin_official(keys):
        return 'swin'
    if is_torchvision_ssd(keys) or is_torchvision_mobilenet_v2(keys):
        return 'torchvision'
    if is_detectron2_naming(keys) or is_caffe2_naming(keys):
        return 'detectron2'
    return None


def detect_file_format(path: Union[str, Path]) -> str:
    """``'detectron2'`` for ``.pkl``, ``'caffe'`` for ``.caffemodel``, else ``'torch'``."""
    suffix = osp.splitext(str(path))[1].lower()
    return {'.pkl': 'detectron2', '.caffemodel': 'caffe'}.get(suffix, 'torch')


def convert_state_dict(state_dict: Mapping[str, Any], source_format: str) -> ConversionResult:
    """Convert an in-memory ``{name: array}`` dict of ``source_format``."""
    if source_format == 'torchvision':
        return convert_torchvision(state_dict)
    if source_format == 'detectron2':
        return convert_detectron2(state_dict)
    if source_format == 'swin':
        return convert_swin_official(state_dict)
    raise ValueError(f'cannot convert a state_dict of format {source_format!r}; '
                     "choose 'torchvision' or 'detectron2' (Caffe needs the .caffemodel file)")


__all__ = [
    'ConversionResult', 'CaffeLayer', 'COCO_CLASSES', 'COCO_CATEGORY_IDS', 'FORMATS',
    'coco_id_to_index', 'unused_coco_ids', 'convert_caffe', 'read_caffemodel',
    'convert_detectron2', 'load_detectron2_pkl', 'convert_torchvision',
    'convert_state_dict', 'detect_state_dict_format', 'detect_file_format',
    'convert_swin_official'
]
