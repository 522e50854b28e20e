"""Detectron2 model-zoo files (``.pkl`` of numpy arrays) -> mmft layout.

Two key namings are understood:
    * Detectron2's own (``model_final_*.pkl`` of the R50-FPN Faster / Mask
      R-CNN, and backbones converted to it): ``backbone.bottom_up.stem.conv1``,
      ``backbone.bottom_up.res{2..5}.{j}.conv{1,2,3}[.norm]``, ``.shortcut``,
      ``backbone.fpn_lateral{2..5}``, ``backbone.fpn_output{2..5}``,
      ``proposal_generator.rpn_head.{conv,objectness_logits,anchor_deltas}``,
      ``roi_heads.box_head.fc{1,2}``, ``roi_heads.box_predictor.{cls_score,bbox_pred}``,
      ``roi_heads.mask_head.{mask_fcn1..4,deconv,predictor}``. The
      ``backbone.bottom_up.`` prefix may be missing (backbone-only files).
      Cascade (Mask) R-CNN files (``CascadeROIHeads``) number the box heads by
      stage, ``roi_heads.box_head.{t}.fc{1,2}`` and
      ``roi_heads.box_predictor.{t}.{cls_score,bbox_pred}`` (``bbox_pred`` class-
      agnostic, 4 rows), and keep ONE mask head for the final boxes; MMDetection's
      cascade has a mask head per stage and averages their probabilities, so that
      head is written to every ``roi_head.mask_head.{t}`` (the average of equal heads
      is the head). Scores differ slightly from Detectron2's at test time:
      Detectron2 averages the stages' probabilities, MMDetection (and mmft) their logits.
    * Caffe2 / Detectron1 blob names of the MSRA ImageNet backbones
      (``ImageNetPretrained/MSRA/R-50.pkl``): ``conv1_w``, ``res_conv1_bn_{s,b}``,
      ``res{N}_{j}_branch1_w``, ``res{N}_{j}_branch2{a,b,c}_w`` and ``_bn_{s,b}``.
      Their norms are affine only (BN folded into scale ``s`` and bias ``b``), so
      ``running_mean = 0`` and ``running_var = 1 - eps`` are written, which makes
      mmft's BatchNorm (eps 1e-5) compute exactly ``s * x + b``.

Class layout: Detectron2 already matches mmft (``cls_score``: K classes then
background last; ``bbox_pred``: 4 per class, class-major; mask ``predictor``: K),
so rows are copied as they are. With K = 80 the COCO names are attached
(Detectron2's contiguous COCO order is by increasing category id, as mmft's).

Conventions such weights need (see docs/model_zoo.md): ResNet
``style='caffe'`` (stride on the first 1x1 conv, Detectron2's STRIDE_IN_1X1),
``norm_cfg=dict(type='BN', requires_grad=False)`` with ``norm_eval=True``
(frozen BN), data_preprocessor ``mean=[103.530, 116.280, 123.675],
std=[1.0, 1.0, 1.0], bgr_to_rgb=False`` (BGR in 0..255).

Reading: :func:`load_detectron2_pkl` unpickles with an allow-list of numpy
array / dtype reconstruction and plain containers; anything else (a function,
a class of the producing program) is refused before it runs.
"""
import io
import os.path as osp
import pickle
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from .base import (ConversionResult, KeyRules, add_num_batches_tracked, convert_by_rules,
                   dataset_meta, to_tensor)
from .coco_classes import COCO_CLASSES

#: BatchNorm eps of mmft's ResNet (and of Detectron2's FrozenBatchNorm2d).
BN_EPS = 1e-5


def _detectron2_rules() -> KeyRules:
    # num_batches_tracked: backbones converted from torchvision keep BatchNorm's counter
    bn = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
    pre = r'(?:backbone\.bottom_up\.)?'
    rules: List[Tuple[str, str]] = [
        (pre + r'stem\.conv1\.weight', r'backbone.conv1.weight'),
        (pre + r'stem\.conv1\.norm\.' + bn, r'backbone.bn1.\1'),
    ]
    for stage in range(2, 6):
        layer = f'backbone.layer{stage - 1}'
        rules += [
            (pre + rf'res{stage}\.(\d+)\.conv(\d)\.weight', layer + r'.\1.conv\2.weight'),
            (pre + rf'res{stage}\.(\d+)\.conv(\d)\.norm\.' + bn, layer + r'.\1.bn\2.\3'),
            (pre + rf'res{stage}\.(\d+)\.shortcut\.weight', layer + r'.\1.downsample.0.weight'),
            (pre + rf'res{stage}\.(\d+)\.shortcut\.norm\.' + bn, layer + r'.\1.downsample.1.\2'),
        ]
    for level in range(2, 6):
        rules += [
            (rf'backbone\.fpn_lateral{level}\.(weight|bias)',
             rf'neck.lateral_convs.{level - 2}.conv.\1'),
            (rf'backbone\.fpn_output{level}\.(weight|bias)',
             rf'neck.fpn_convs.{level - 2}.conv.\1'),
        ]
    rules += [
        (r'proposal_generator\.rpn_head\.conv\.(weight|bias)', r'rpn_head.rpn_conv.\1'),
        (r'proposal_generator\.rpn_head\.objectness_logits\.(weight|bias)', r'rpn_head.rpn_cls.\1'),
        (r'proposal_generator\.rpn_head\.anchor_deltas\.(weight|bias)', r'rpn_head.rpn_reg.\1'),
        (r'roi_heads\.box_head\.fc1\.(weight|bias)', r'roi_head.bbox_head.shared_fcs.0.\1'),
        (r'roi_heads\.box_head\.fc2\.(weight|bias)', r'roi_head.bbox_head.shared_fcs.1.\1'),
        (r'roi_heads\.box_predictor\.cls_score\.(weight|bias)', r'roi_head.bbox_head.fc_cls.\1'),
        (r'roi_heads\.box_predictor\.bbox_pred\.(weight|bias)', r'roi_head.bbox_head.fc_reg.\1'),
        (r'roi_heads\.mask_head\.deconv\.(weight|bias)', r'roi_head.mask_head.upsample.\1'),
        (r'roi_heads\.mask_head\.predictor\.(weight|bias)', r'roi_head.mask_head.conv_logits.\1'),
    ]
    for i in range(1, 5):
        rules.append((rf'roi_heads\.mask_head\.mask_fcn{i}\.(weight|bias)',
                      rf'roi_head.mask_head.convs.{i - 1}.conv.\1'))
    return tuple(rules)


#: Detectron2 naming -> mmft.
DETECTRON2_RULES: KeyRules = _detectron2_rules()


# ------------------------------------------------------------------ Cascade R-CNN
def _detectron2_cascade_rules() -> KeyRules:
    head, predictor = r'roi_heads\.box_head\.(\d+)\.', r'roi_heads\.box_predictor\.(\d+)\.'
    return (
        (head + r'fc1\.(weight|bias)', r'roi_head.bbox_head.\1.shared_fcs.0.\2'),
        (head + r'fc2\.(weight|bias)', r'roi_head.bbox_head.\1.shared_fcs.1.\2'),
        (predictor + r'cls_score\.(weight|bias)', r'roi_head.bbox_head.\1.fc_cls.\2'),
        (predictor + r'bbox_pred\.(weight|bias)', r'roi_head.bbox_head.\1.fc_reg.\2'),
    )


#: Detectron2's CascadeROIHeads box heads (one per stage) -> mmft's CascadeRoIHead; the rest
#: of a cascade file (backbone, FPN, RPN, the mask head) follows DETECTRON2_RULES.
DETECTRON2_CASCADE_RULES: KeyRules = _detectron2_cascade_rules()
_CASCADE_STAGE = re.compile(r'roi_heads\.box_predictor\.(\d+)\.')
_MASK_HEAD = 'roi_head.mask_head.'


def cascade_num_stages(keys) -> int:
    """Stages of a Detectron2 Cascade R-CNN file (0 for any other file)."""
    stages = [int(m.group(1)) for m in map(_CASCADE_STAGE.match, keys) if m]
    return max(stages) + 1 if stages else 0


def spread_mask_head(state_dict: Dict[str, torch.Tensor], num_stages: int
                     ) -> Dict[str, torch.Tensor]:
    """Detectron2's one cascade mask head as MMDetection's per-stage heads
    (``roi_head.mask_head.X`` -> ``roi_head.mask_head.{t}.X`` for every stage ``t``)."""
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(_MASK_HEAD):
            rest = key[len(_MASK_HEAD):]
            out.update({f'{_MASK_HEAD}{t}.{rest}': value.clone() for t in range(num_stages)})
        else:
            out[key] = value
    return out


def _caffe2_rules() -> KeyRules:
    rules: List[Tuple[str, str]] = [
        (r'conv1_w', r'backbone.conv1.weight'),
        (r'res_conv1_bn_s', r'backbone.bn1.weight'),
        (r'res_conv1_bn_b', r'backbone.bn1.bias'),
    ]
    for stage in range(2, 6):
        layer = f'backbone.layer{stage - 1}'
        rules += [
            (rf'res{stage}_(\d+)_branch1_w', layer + r'.\1.downsample.0.weight'),
            (rf'res{stage}_(\d+)_branch1_bn_s', layer + r'.\1.downsample.1.weight'),
            (rf'res{stage}_(\d+)_branch1_bn_b', layer + r'.\1.downsample.1.bias'),
        ]
        for letter, index in (('a', 1), ('b', 2), ('c', 3)):
            rules += [
                (rf'res{stage}_(\d+)_branch2{letter}_w', layer + rf'.\1.conv{index}.weight'),
                (rf'res{stage}_(\d+)_branch2{letter}_bn_s', layer + rf'.\1.bn{index}.weight'),
                (rf'res{stage}_(\d+)_branch2{letter}_bn_b', layer + rf'.\1.bn{index}.bias'),
            ]
    return tuple(rules)


#: Caffe2 / Detectron1 blob names (MSRA ImageNet backbones) -> mmft.
CAFFE2_RULES: KeyRules = _caffe2_rules()


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes and plain containers; refuses any other global."""

    _ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
        ('numpy', 'ndarray'), ('numpy', 'dtype'),
        ('collections', 'OrderedDict'),
        # protocol-2 pickles written by Python 3 store array bytes as _codecs.encode(str, 'latin1')
        ('_codecs', 'encode'),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED or (module == 'numpy.dtypes' and name.endswith('DType')):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'refused to unpickle global {module}.{name}: a Detectron2 .pkl may only hold numpy '
            'arrays and plain containers, so nothing from this file was run. If you trust the '
            'file, re-save its arrays as a plain dict of numpy arrays.')


def load_detectron2_pkl(source: Union[str, Path, bytes]) -> Dict[str, Any]:
    """Unpickle a Detectron2 / Detectron1 ``.pkl`` safely.

    Returns:
        The top-level dict (``{'model': {...}, '__author__': ...}``,
        ``{'blobs': {...}}`` or a flat ``{name: array}``).
    """
    if isinstance(source, bytes):
        data = source
    else:
        if not osp.isfile(str(source)):
            raise FileNotFoundError(f'Detectron2 checkpoint {str(source)!r} does not exist')
        with open(source, 'rb') as f:
            data = f.read()
    # Detectron1 files were written by Python 2: latin1 keeps their byte strings intact
    obj = _ArraysOnlyUnpickler(io.BytesIO(data), encoding='latin1').load()
    if not isinstance(obj, dict):
        raise TypeError(f'Detectron2 checkpoint holds a {type(obj).__name__}, expected a dict '
                        "with 'model' or 'blobs'")
    return obj


def weights_of(obj: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``{name: array}`` part of a Detectron2 / Detectron1 checkpoint dict."""
    for key in ('model', 'blobs'):
        if isinstance(obj.get(key), dict):
            return dict(obj[key])
    return {k: v for k, v in obj.items() if isinstance(v, (np.ndarray, torch.Tensor))}


def is_caffe2_naming(keys) -> bool:
    """Whether keys are Detectron1 / Caffe2 blob names (``res2_0_branch2a_w``)."""
    keys = set(keys)
    return 'conv1_w' in keys or any(k.startswith('res2_0_branch') for k in keys)


def is_detectron2_naming(keys) -> bool:
    """Whether keys are Detectron2 module names."""
    return any(k.startswith(('backbone.bottom_up.', 'proposal_generator.', 'stem.conv1', 'res2.0.'))
               for k in keys)


def convert_detectron2(source: Mapping[str, Any]) -> ConversionResult:
    """Convert a Detectron2 checkpoint dict (as :func:`load_detectron2_pkl` returns)
    or its ``{name: array}`` weights to mmft layout."""
    weights = weights_of(source) if ('model' in source or 'blobs' in source) else dict(source)
    meta: Dict[str, Any] = {'source_format': 'detectron2'}
    unconverted: List[str] = []
    if is_caffe2_naming(weights):
        # Detectron1 stores optimizer momenta next to weights; they are not weights
        state_dict, _, unconverted = convert_by_rules(weights, CAFFE2_RULES)
        norm_weights = [k for k in state_dict if k.endswith('.weight') and
                        (re.search(r'\.bn\d\.weight$', k) or k.endswith('downsample.1.weight'))]
        for key in norm_weights:
            prefix = key[:-len('weight')]
            state_dict[prefix + 'running_mean'] = torch.zeros_like(state_dict[key])
            state_dict[prefix + 'running_var'] = torch.full_like(state_dict[key], 1.0 - BN_EPS)
        meta['naming'] = 'caffe2'
    else:
        extra = {k: weights.pop(k) for k in ('pixel_mean', 'pixel_std') if k in weights}
        num_stages = cascade_num_stages(weights)
        rules = tuple(DETECTRON2_CASCADE_RULES) + tuple(DETECTRON2_RULES) if num_stages \
            else DETECTRON2_RULES
        state_dict, _, unconverted = convert_by_rules(weights, rules)
        if num_stages:
            state_dict = spread_mask_head(state_dict, num_stages)
            meta['cascade_stages'] = num_stages
        for name, value in extra.items():
            meta[name] = to_tensor(value, name).flatten().tolist()
        meta['naming'] = 'detectron2'
    classes: Optional[Tuple[str, ...]] = None
    cls_weight = state_dict.get('roi_head.bbox_head.fc_cls.weight',
                                state_dict.get('roi_head.bbox_head.0.fc_cls.weight'))
    if cls_weight is not None and cls_weight.shape[0] == len(COCO_CLASSES) + 1:
        classes = tuple(COCO_CLASSES)
    # an ImageNet backbone restores only the backbone (checkpoint_type 'auto' reads this)
    backbone_only = bool(state_dict) and all(k.startswith('backbone.') for k in state_dict)
    meta['source_model'] = 'classification' if backbone_only else 'detection'
    author = source.get('__author__')
    if isinstance(author, str):
        meta['author'] = author
    # backbones made by Detectron2's convert-torchvision-to-d2.py (author 'torchvision') keep
    # torchvision's conventions; anything else is taken as MSRA-style (STRIDE_IN_1X1=True, the
    # default of every R50 / R101 model-zoo file; a run that turned it off leaves no trace)
    meta['style'] = 'pytorch' if author == 'torchvision' else 'caffe'
    meta['classes'] = classes
    meta['dataset_meta'] = dataset_meta(classes)
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)
