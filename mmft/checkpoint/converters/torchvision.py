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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

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


def class_rows(num_rows: int, kind: str) -> Tuple[List[int], Optional[Tuple[str, ...]]]:
    """Source rows, in mmft order, of a torchvision per-class predictor.

    Args:
        num_rows: rows of the classifier (``cls_score``), background included.
        kind: ``'cls'`` (K classes then background), ``'reg'`` (4 rows per class,
            no background) or ``'mask'`` (one channel per class, no background).

    Returns:
        ``(row indices into the source tensor, class names or None)``.
    """
    if num_rows == TORCHVISION_COCO_NUM_OUTPUTS:
        class_ids, names = list(COCO_CATEGORY_IDS), tuple(COCO_CLASSES)
    else:
        class_ids, names = list(range(1, num_rows)), None
    if kind == 'cls':
        return class_ids + [0], names
    if kind == 'reg':
        return [4 * c + j for c in class_ids for j in range(4)], names
    if kind == 'mask':
        return class_ids, names
    raise ValueError(f'class row kind must be cls, reg or mask, got {kind!r}')


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
        tensor = to_tensor(value, key)
        rows, classes = class_rows(num_rows, kind)
        if max(rows) >= tensor.shape[0]:
            raise ValueError(f'torchvision {key} has {tensor.shape[0]} rows, which does not fit '
                             f'a classifier of {num_rows} rows; the file looks truncated')
        state_dict[new_key] = tensor[torch.as_tensor(rows)].clone()
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
    if is_torchvision_ssd(keys):
        return convert_ssd(source)
    if is_torchvision_mobilenet_v2(keys):
        return convert_mobilenet_v2(source)
    if is_torchvision_detection(keys):
        return convert_detection(source)
    if is_torchvision_classification(keys):
        return convert_classification(source)
    raise ValueError('not a torchvision detection (backbone.body.*, rpn.head.*) or '
                     f'classification ResNet (conv1, layer1.0.*, fc) state_dict; first keys: '
                     f'{keys[:5]}. Use --format to name the source if it is another one.')


# ---------------------------------------------------------------------------------------
# MobileNetV2 classifier and SSD300-VGG16 detector (the SSD / YOLOv3 families)
# ---------------------------------------------------------------------------------------

#: torchvision ``mobilenet_v2`` ``features.{n}`` (n = 1..17) -> mmft ``layer{i}.{j}``
_MBV2_BLOCKS = [(stage + 1, j) for stage, n in enumerate((1, 2, 3, 4, 3, 3, 1))
                for j in range(n)]
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


def _mobilenet_v2_rules() -> KeyRules:
    rules = [(r'features\.0\.0\.weight', 'backbone.conv1.conv.weight'),
             (r'features\.0\.1\.' + _BN, r'backbone.conv1.bn.\1'),
             (r'features\.18\.0\.weight', 'backbone.conv2.conv.weight'),
             (r'features\.18\.1\.' + _BN, r'backbone.conv2.bn.\1')]
    for n, (stage, j) in enumerate(_MBV2_BLOCKS, start=1):
        block = f'backbone.layer{stage}.{j}'
        # the expand-ratio-1 block has no expand conv, so its indices shift by one
        parts = (('0', 'depthwise_conv'), ('1', 'linear_conv'), ('2', None)) if n == 1 else \
            (('0', 'expand_conv'), ('1', 'depthwise_conv'), ('2', 'linear_conv'), ('3', None))
        for idx, name in parts:
            if name is None:  # the linear conv's BatchNorm
                rules.append((rf'features\.{n}\.conv\.{idx}\.' + _BN,
                              rf'{block}.linear_conv.bn.\1'))
            elif name == 'linear_conv':
                rules.append((rf'features\.{n}\.conv\.{idx}\.weight', f'{block}.{name}.conv.weight'))
            else:
                rules.append((rf'features\.{n}\.conv\.{idx}\.0\.weight',
                              f'{block}.{name}.conv.weight'))
                rules.append((rf'features\.{n}\.conv\.{idx}\.1\.' + _BN,
                              rf'{block}.{name}.bn.\1'))
    return tuple(rules)


MOBILENET_V2_RULES: KeyRules = _mobilenet_v2_rules()

#: torchvision ``ssd300_vgg16``: backbone and box regression (class rows separately).
#: Its ``backbone.extra.0`` is pool4, conv5_1..3 and (``.7``) pool5, fc6, fc7: SSDVGG's
#: ``features`` 23..34; ``backbone.extra.{k}`` (k >= 1) is the neck's extra level k - 1.
SSD300_VGG16_RULES: KeyRules = (
    (r'backbone\.features\.(\d+)\.(weight|bias)', r'backbone.features.\1.\2'),
    (r'backbone\.extra\.0\.1\.(weight|bias)', r'backbone.features.24.\1'),
    (r'backbone\.extra\.0\.3\.(weight|bias)', r'backbone.features.26.\1'),
    (r'backbone\.extra\.0\.5\.(weight|bias)', r'backbone.features.28.\1'),
    (r'backbone\.extra\.0\.7\.1\.(weight|bias)', r'backbone.features.31.\1'),
    (r'backbone\.extra\.0\.7\.3\.(weight|bias)', r'backbone.features.33.\1'),
    (r'backbone\.scale_weight', r'neck.l2_norm.weight'),
) + tuple(
    rule for k in range(1, 9) for rule in (
        (rf'backbone\.extra\.{k}\.0\.(weight|bias)', rf'neck.extra_layers.{k - 1}.0.conv.\1'),
        (rf'backbone\.extra\.{k}\.2\.(weight|bias)', rf'neck.extra_layers.{k - 1}.1.conv.\1'))
) + (
    (r'head\.regression_head\.module_list\.(\d+)\.(weight|bias)',
     r'bbox_head.reg_convs.\1.0.\2'),
)


def is_torchvision_mobilenet_v2(keys: Sequence[str]) -> bool:
    """Whether keys look like torchvision's ``mobilenet_v2`` classifier."""
    keys = set(keys)
    return {'features.0.0.weight', 'features.1.conv.0.0.weight',
            'features.18.0.weight'} <= keys


def is_torchvision_ssd(keys: Sequence[str]) -> bool:
    """Whether keys look like torchvision's ``ssd300_vgg16`` detector."""
    keys = set(keys)
    return 'backbone.scale_weight' in keys and \
        any(k.startswith('head.classification_head.module_list.') for k in keys)


def convert_mobilenet_v2(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision ``mobilenet_v2`` -> ``backbone.*`` of mmft's MobileNetV2 (``classifier``
    stays unconverted)."""
    state_dict, _, unconverted = convert_by_rules(source, MOBILENET_V2_RULES)
    meta = {'source_format': 'torchvision', 'source_model': 'classification',
            'architecture': 'mobilenet_v2', 'classes': None, 'dataset_meta': {}}
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)


def convert_ssd(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision ``ssd300_vgg16`` -> mmft's SSD300 (SSDVGG, SSDNeck, SSDHead).

    Class rows: torchvision has, per anchor, ``N`` rows with background FIRST (91 = COCO
    ids for its COCO model); mmft has the classes then background LAST, per anchor, so
    each anchor's block is reordered (for 91 rows: the 80 used COCO ids in mmft's order).
    """
    cls_prefix = 'head.classification_head.module_list.'
    per_class = {k: v for k, v in source.items() if k.startswith(cls_prefix)}
    rest = {k: v for k, v in source.items() if not k.startswith(cls_prefix)}
    state_dict, _, unconverted = convert_by_rules(rest, SSD300_VGG16_RULES)
    num_rows = None
    regs = {int(k.split('.')[-2]): int(to_tensor(v, k).shape[0]) // 4
            for k, v in source.items() if k.startswith('head.regression_head.')
            and k.endswith('weight')}
    classes: Optional[Tuple[str, ...]] = None
    for key, value in per_class.items():
        level, name = key[len(cls_prefix):].split('.')
        tensor = to_tensor(value, key)
        anchors = regs.get(int(level))
        if not anchors or tensor.shape[0] % anchors:
            raise ValueError(f'torchvision {key} has {tensor.shape[0]} rows, not a multiple of '
                             f'the {anchors} anchors of its regression head; the file looks '
                             'truncated')
        num_rows = tensor.shape[0] // anchors
        rows, classes = class_rows(num_rows, 'cls')
        index = torch.as_tensor([a * num_rows + r for a in range(anchors) for r in rows])
        state_dict[f'bbox_head.cls_convs.{level}.0.{name}'] = tensor[index].clone()
    meta: Dict[str, Any] = {'source_format': 'torchvision', 'source_model': 'detection',
                            'architecture': 'ssd300_vgg16', 'classes': classes,
                            'dataset_meta': dataset_meta(classes)}
    if num_rows == TORCHVISION_COCO_NUM_OUTPUTS:
        meta['dropped_rows'] = f'class rows of unused COCO ids {unused_coco_ids()}'
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)
