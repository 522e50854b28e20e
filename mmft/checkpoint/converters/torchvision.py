"""torchvision checkpoints -> mmft layout.

Handles:
    * detection models ``fasterrcnn_resnet50_fpn`` and ``maskrcnn_resnet50_fpn``
      (keys ``backbone.body.*``, ``backbone.fpn.*``, ``rpn.head.*``,
      ``roi_heads.*``; both the current ``Conv2dNormActivation`` naming
      ``inner_blocks.0.0.weight`` and the older ``inner_blocks.0.weight``);
    * classification ResNets (``resnet18/34/50/101/152``: ``conv1``, ``bn1``,
      ``layerN.M.*``, ``fc``) as backbones: mmft's ResNet uses the same names,
      so keys get the ``backbone.`` prefix and ``fc.*`` stays unconverted.

Class layout: torchvision classifiers put background in row 0; its COCO models
have 91 rows indexed by COCO category id (10 ids unused). mmft has ``K`` rows of
classes in contiguous order then background last (``fc_cls``: K+1 rows;
``fc_reg``: 4K rows, class-major, no background; mask ``conv_logits``: K).
For a 91-row COCO head the rows of the 80 used ids are taken in
:data:`COCO_CATEGORY_IDS` order and the COCO names attached; for any other
``N``-row head (a torchvision model fine-tuned on ``N-1`` classes) background
moves from first to last and class names are unknown (``None``).

Inference conventions that go with torchvision weights (see docs/model_zoo.md):
RGB input in [0, 1] normalised with ImageNet mean/std, i.e. mmft
``mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True``;
RoIAlign ``aligned=False, sampling_ratio=2``; RoI box coder
``target_stds=[0.1, 0.1, 0.2, 0.2]``; RPN coder ``target_stds=[1, 1, 1, 1]``.
"""
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from torch import Tensor

from mmft.structures.class_rows import ClassRows, gather_class_rows

from .base import (ConversionResult, KeyRules, add_num_batches_tracked, convert_by_rules,
                   dataset_meta, to_tensor)
from .coco_classes import (COCO_CATEGORY_IDS, COCO_CLASSES, TORCHVISION_COCO_NUM_OUTPUTS,
                           unused_coco_ids)

_P = r'(weight|bias|running_mean|running_var|num_batches_tracked)'

#: Detection models: torchvision key -> mmft key (class rows handled separately).
DETECTION_RULES: KeyRules = (
    (r'backbone\.body\.(conv1|bn1)\.' + _P, r'backbone.\1.\2'),
    (r'backbone\.body\.(layer\d\.\d+\..+)', r'backbone.\1'),
    (r'backbone\.fpn\.inner_blocks\.(\d)(?:\.0)?\.(weight|bias)', r'neck.lateral_convs.\1.conv.\2'),
    (r'backbone\.fpn\.layer_blocks\.(\d)(?:\.0)?\.(weight|bias)', r'neck.fpn_convs.\1.conv.\2'),
    (r'rpn\.head\.conv(?:\.0\.0)?\.(weight|bias)', r'rpn_head.rpn_conv.\1'),
    (r'rpn\.head\.cls_logits\.(weight|bias)', r'rpn_head.rpn_cls.\1'),
    (r'rpn\.head\.bbox_pred\.(weight|bias)', r'rpn_head.rpn_reg.\1'),
    (r'roi_heads\.box_head\.fc6\.(weight|bias)', r'roi_head.bbox_head.shared_fcs.0.\1'),
    (r'roi_heads\.box_head\.fc7\.(weight|bias)', r'roi_head.bbox_head.shared_fcs.1.\1'),
    # current naming: mask_head.{0..3}.0.*; older: mask_head.mask_fcn{1..4}.*
    (r'roi_heads\.mask_head\.(\d)\.0\.(weight|bias)', r'roi_head.mask_head.convs.\1.conv.\2'),
    (r'roi_heads\.mask_head\.mask_fcn1\.(weight|bias)', r'roi_head.mask_head.convs.0.conv.\1'),
    (r'roi_heads\.mask_head\.mask_fcn2\.(weight|bias)', r'roi_head.mask_head.convs.1.conv.\1'),
    (r'roi_heads\.mask_head\.mask_fcn3\.(weight|bias)', r'roi_head.mask_head.convs.2.conv.\1'),
    (r'roi_heads\.mask_head\.mask_fcn4\.(weight|bias)', r'roi_head.mask_head.convs.3.conv.\1'),
    (r'roi_heads\.mask_predictor\.conv5_mask\.(weight|bias)', r'roi_head.mask_head.upsample.\1'),
)

#: Per-class predictors: torchvision key -> (mmft key, kind of row layout).
CLASS_ROW_RULES: Dict[str, Tuple[str, str]] = {
    'roi_heads.box_predictor.cls_score.weight': ('roi_head.bbox_head.fc_cls.weight', 'cls'),
    'roi_heads.box_predictor.cls_score.bias': ('roi_head.bbox_head.fc_cls.bias', 'cls'),
    'roi_heads.box_predictor.bbox_pred.weight': ('roi_head.bbox_head.fc_reg.weight', 'reg'),
    'roi_heads.box_predictor.bbox_pred.bias': ('roi_head.bbox_head.fc_reg.bias', 'reg'),
    'roi_heads.mask_predictor.mask_fcn_logits.weight':
        ('roi_head.mask_head.conv_logits.weight', 'mask'),
    'roi_heads.mask_predictor.mask_fcn_logits.bias':
        ('roi_head.mask_head.conv_logits.bias', 'mask'),
}

#: Classification ResNets: same names as mmft's ResNet; ``fc`` has no place.
CLASSIFICATION_RULES: KeyRules = (
    (r'(conv1|bn1)\.' + _P, r'backbone.\1.\2'),
    (r'(layer\d\.\d+\..+)', r'backbone.\1'),
)


def is_torchvision_detection(keys: Sequence[str]) -> bool:
    """Whether keys look like a torchvision ``*rcnn_resnet*_fpn`` state_dict."""
    keys = set(keys)
    return any(k.startswith('backbone.body.') for k in keys) and \
        any(k.startswith(('rpn.head.', 'backbone.fpn.')) for k in keys)


def is_torchvision_classification(keys: Sequence[str]) -> bool:
    """Whether keys look like a torchvision classification ResNet state_dict."""
    keys = set(keys)
    return {'conv1.weight', 'bn1.weight', 'fc.weight'} <= keys and \
        any(k.startswith('layer1.0.') for k in keys)


#: predictor kind -> (torchvision's layout, MMDetection's layout) for ``num_classes`` classes:
#: torchvision's box regressor and mask predictor keep a background block first, whose 4
#: rows / 1 channel are class-free prefix rows here (dropped, MMDetection has none)
_LAYOUTS = {
    'cls': (lambda n: ClassRows(n, background='first', activation='softmax'),
            lambda n: ClassRows(n, background='last', activation='softmax')),
    'reg': (lambda n: ClassRows(n, per_class=4, prefix=4), lambda n: ClassRows(n, per_class=4)),
    'mask': (lambda n: ClassRows(n, prefix=1), lambda n: ClassRows(n)),
}


def convert_class_rows(tensor: Tensor, num_rows: int, kind: str
                       ) -> Tuple[Tensor, Optional[Tuple[str, ...]]]:
    """A torchvision per-class predictor tensor in MMDetection's row layout.

    Args:
        tensor: ``cls_score`` / ``bbox_pred`` / ``mask_fcn_logits`` weight or bias.
        num_rows: rows of the classifier (``cls_score``), background included.
        kind: ``'cls'``, ``'reg'`` or ``'mask'``.

    Returns:
        ``(tensor in mmft's layout, class names or None)``: a 91-row COCO head keeps the
        80 used category ids in :data:`COCO_CATEGORY_IDS` order, with COCO's names.
    """
    if kind not in _LAYOUTS:
        raise ValueError(f'class row kind must be cls, reg or mask, got {kind!r}')
    source_layout, target_layout = _LAYOUTS[kind]
    if num_rows == TORCHVISION_COCO_NUM_OUTPUTS:
        source_index, names = [i - 1 for i in COCO_CATEGORY_IDS], tuple(COCO_CLASSES)
    else:
        source_index, names = list(range(num_rows - 1)), None
    source_rows = source_layout(num_rows - 1)
    if tensor.shape[0] != source_rows.num_rows:
        raise ValueError(f'torchvision {kind} predictor has {tensor.shape[0]} rows, which does '
                         f'not fit a classifier of {num_rows} rows; the file looks truncated')
    out = gather_class_rows(tensor, source_rows, target_layout(len(source_index)),
                            source_index)
    return out, names


def convert_detection(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision Faster/Mask R-CNN R50-FPN state_dict -> mmft layout."""
    per_class = {k: v for k, v in source.items() if k in CLASS_ROW_RULES}
    rest = {k: v for k, v in source.items() if k not in CLASS_ROW_RULES}
    state_dict, _, unconverted = convert_by_rules(rest, DETECTION_RULES)
    classes: Optional[Tuple[str, ...]] = None
    num_rows = None
    if 'roi_heads.box_predictor.cls_score.weight' in source:
        num_rows = int(source['roi_heads.box_predictor.cls_score.weight'].shape[0])
    elif 'roi_heads.mask_predictor.mask_fcn_logits.weight' in source:
        num_rows = int(source['roi_heads.mask_predictor.mask_fcn_logits.weight'].shape[0])
    for key, value in per_class.items():
        new_key, kind = CLASS_ROW_RULES[key]
        state_dict[new_key], classes = convert_class_rows(to_tensor(value, key), num_rows, kind)
    meta: Dict[str, Any] = {'source_format': 'torchvision', 'source_model': 'detection',
                            'style': 'pytorch', 'classes': classes,
                            'dataset_meta': dataset_meta(classes)}
    if num_rows == TORCHVISION_COCO_NUM_OUTPUTS:
        meta['dropped_rows'] = (f'background rows of bbox_pred / mask_fcn_logits and the rows of '
                                f'unused COCO ids {unused_coco_ids()}')
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)


def convert_classification(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision classification ResNet state_dict -> ``backbone.*`` keys."""
    state_dict, _, unconverted = convert_by_rules(source, CLASSIFICATION_RULES)
    meta = {'source_format': 'torchvision', 'source_model': 'classification',
            'style': 'pytorch', 'classes': None, 'dataset_meta': {}}
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)


def convert_torchvision(source: Mapping[str, Any]) -> ConversionResult:
    """Convert a torchvision detection or classification state_dict.

    Raises:
        ValueError: the keys look like neither (the message lists a few).
    """
    keys = list(source)
    if is_torchvision_detection(keys):
        return convert_detection(source)
    if is_torchvision_classification(keys):
        return convert_classification(source)
    raise ValueError('not a torchvision detection (backbone.body.*, rpn.head.*) or '
                     f'classification ResNet (conv1, layer1.0.*, fc) state_dict; first keys: '
                     f'{keys[:5]}. Use --format to name the source if it is another one.')
