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
import re
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
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


# ---------------------------------------------------------------- one-stage detectors
# torchvision ``retinanet_resnet50_fpn`` (v1 and v2) and ``fcos_resnet50_fpn``: keys
# ``backbone.body.*``, ``backbone.fpn.*`` (P6/P7 in ``extra_blocks.p6/p7``) and
# ``head.{classification,regression}_head.*``. The tower convs are ``conv.{i}.0`` (+ GN
# ``conv.{i}.1`` in v2; ``conv.{2i}`` in torchvision < 0.13) for RetinaNet and a flat
# ``conv.{3i}`` conv + ``conv.{3i+1}`` GN for FCOS. ``cls_logits`` has ``A * K`` rows,
# anchor-major, K = 91 COCO ids (sigmoid, no background; row 0 and the unused ids are
# dropped) or K = N + 1 for a model fine-tuned on N classes (row 0 dropped).

#: torchvision one-stage key -> mmft key (the towers and the classifier are handled apart).
ONE_STAGE_RULES: KeyRules = (
    (r'backbone\.body\.(conv1|bn1)\.' + _P, r'backbone.\1.\2'),
    (r'backbone\.body\.(layer\d\.\d+\..+)', r'backbone.\1'),
    (r'backbone\.fpn\.inner_blocks\.(\d)(?:\.0)?\.(weight|bias)', r'neck.lateral_convs.\1.conv.\2'),
    (r'backbone\.fpn\.layer_blocks\.(\d)(?:\.0)?\.(weight|bias)', r'neck.fpn_convs.\1.conv.\2'),
    (r'backbone\.fpn\.extra_blocks\.p6\.(weight|bias)', r'neck.fpn_convs.3.conv.\1'),
    (r'backbone\.fpn\.extra_blocks\.p7\.(weight|bias)', r'neck.fpn_convs.4.conv.\1'),
)
_TOWER = re.compile(r'head\.(classification|regression)_head\.conv\.(\d+)(?:\.(\d+))?\.'
                    r'(weight|bias)$')
#: torchvision predictor -> mmft layer, per family
ONE_STAGE_PREDICTORS = {
    'retinanet': {'head.classification_head.cls_logits': 'bbox_head.retina_cls',
                  'head.regression_head.bbox_reg': 'bbox_head.retina_reg'},
    'fcos': {'head.classification_head.cls_logits': 'bbox_head.conv_cls',
             'head.regression_head.bbox_reg': 'bbox_head.conv_reg',
             'head.regression_head.bbox_ctrness': 'bbox_head.conv_centerness'},
}
#: pyramid levels of torchvision's one-stage detectors (P3-P7): FCOS' per-level ``scales``
ONE_STAGE_LEVELS = 5


def is_torchvision_one_stage(keys: Sequence[str]) -> bool:
    """Whether keys look like torchvision's RetinaNet / FCOS state_dict."""
    keys = set(keys)
    return any(k.startswith('backbone.body.') for k in keys) and \
        any(k.startswith('head.classification_head.') for k in keys)


def _tower_keys(source: Mapping[str, Any]) -> Dict[str, str]:
    """torchvision tower key -> mmft ``bbox_head.{cls,reg}_convs.{i}.{conv,gn}.*`` key.

    Convs and norms are numbered in order of their index in the Sequential, which
    covers every torchvision layout (``conv.{i}.0/1``, ``conv.{2i}``, ``conv.{3i}/{3i+1}``).
    """
    layers: Dict[Tuple[str, Tuple[int, int]], str] = {}
    for key, value in source.items():
        m = _TOWER.match(key)
        if m and m.group(4) == 'weight':
            pos = (int(m.group(2)), int(m.group(3) or 0))
            layers[(m.group(1), pos)] = 'conv' if to_tensor(value, key).dim() == 4 else 'gn'
    out = {}
    for tower, name in (('classification', 'cls_convs'), ('regression', 'reg_convs')):
        count = {'conv': -1, 'gn': -1}
        index = {}
        for pos in sorted(p for t, p in layers if t == tower):
            kind = layers[(tower, pos)]
            count[kind] += 1
            index[pos] = f'bbox_head.{name}.{count[kind] if kind == "conv" else count["conv"]}.{kind}'
        for key in source:
            m = _TOWER.match(key)
            if m and m.group(1) == tower:
                out[key] = f'{index[(int(m.group(2)), int(m.group(3) or 0))]}.{m.group(4)}'
    return out


def convert_one_stage(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision RetinaNet (v1, v2) / FCOS R50-FPN state_dict -> mmft layout.

    FCOS gets ``bbox_head.scales.{l}.scale = 1`` (torchvision has no per-level scale).
    """
    family = 'fcos' if 'head.regression_head.bbox_ctrness.weight' in source else 'retinanet'
    predictors = ONE_STAGE_PREDICTORS[family]
    towers = _tower_keys(source)
    rest = {k: v for k, v in source.items()
            if k not in towers and k.rsplit('.', 1)[0] not in predictors}
    state_dict, _, unconverted = convert_by_rules(rest, ONE_STAGE_RULES)
    for key, new_key in towers.items():
        state_dict[new_key] = to_tensor(source[key], key)
    cls_key = 'head.classification_head.cls_logits.weight'
    reg_key = 'head.regression_head.bbox_reg.weight'
    if cls_key not in source or reg_key not in source:
        raise ValueError(f'torchvision {family} state_dict without {cls_key} / {reg_key}; '
                         'the file looks truncated')
    num_anchors = int(source[reg_key].shape[0]) // 4
    rows_per_anchor = int(source[cls_key].shape[0]) // num_anchors
    # per anchor: row 0 (background / COCO id 0, unused by a sigmoid head), then the ids
    source_rows = ClassRows(rows_per_anchor - 1, groups=num_anchors, prefix=1)
    if rows_per_anchor == TORCHVISION_COCO_NUM_OUTPUTS:
        source_index, classes = [i - 1 for i in COCO_CATEGORY_IDS], tuple(COCO_CLASSES)
    else:
        source_index, classes = list(range(rows_per_anchor - 1)), None
    target_rows = ClassRows(len(source_index), groups=num_anchors)
    for prefix, new_prefix in predictors.items():
        for p in ('weight', 'bias'):
            key = f'{prefix}.{p}'
            if key not in source:
                continue
            tensor = to_tensor(source[key], key)
            state_dict[f'{new_prefix}.{p}'] = gather_class_rows(
                tensor, source_rows, target_rows, source_index) \
                if prefix.endswith('cls_logits') else tensor
    if family == 'fcos':
        for level in range(ONE_STAGE_LEVELS):
            state_dict[f'bbox_head.scales.{level}.scale'] = torch.tensor(1.0)
    meta: Dict[str, Any] = {'source_format': 'torchvision', 'source_model': 'detection',
                            'style': 'pytorch', 'classes': classes,
                            'dataset_meta': dataset_meta(classes), 'family': family}
    if rows_per_anchor == TORCHVISION_COCO_NUM_OUTPUTS:
        meta['dropped_rows'] = f'cls_logits rows of COCO id 0 and unused ids {unused_coco_ids()}'
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)


def convert_torchvision(source: Mapping[str, Any]) -> ConversionResult:
    """Convert a torchvision detection or classification state_dict.

    Raises:
        ValueError: the keys look like neither (the message lists a few).
    """
    keys = list(source)
    if is_torchvision_one_stage(keys):
        return convert_one_stage(source)
    if is_torchvision_ssd(keys):
        return convert_ssd(source)
    if is_torchvision_mobilenet_v2(keys):
        return convert_mobilenet_v2(source)
    if is_torchvision_detection(keys):
        return convert_detection(source)
    if is_torchvision_swin(keys):
        return convert_swin_classification(source)
    if is_torchvision_regnet(keys):
        return convert_regnet_classification(source)
    if is_torchvision_classification(keys):
        return convert_classification(source)
    raise ValueError('not a torchvision detection (backbone.body.*, rpn.head.*) or '
                     'classification ResNet / ResNeXt (conv1, layer1.0.*, fc), RegNet '
                     f'(stem.0, trunk_output.*) or Swin (features.*) state_dict; first keys: '
                     f'{keys[:5]}. Use --format to name the source if it is another one.')


# ----------------------------------------------------------------- Swin (swin_t / s / b)
# torchvision's features.{0: patch embed, 2k+1: stage k, 2k+2: merging after stage k}.
# Only Swin v1 (swin_t/s/b); swin_v2_* has other attention parameters (cpb_mlp, logit_scale).
SWIN_CLASSIFICATION_RULES: KeyRules = (
    (r'features\.0\.0\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    (r'features\.0\.2\.(weight|bias)', r'backbone.patch_embed.norm.\1'),
    (r'features\.(\d)\.(\d+)\.(norm1|norm2)\.(weight|bias)', r'S\1.blocks.\2.\3.\4'),
    (r'features\.(\d)\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)', r'S\1.blocks.\2.attn.w_msa.\3.\4'),
    (r'features\.(\d)\.(\d+)\.attn\.(relative_position_bias_table|relative_position_index)',
     r'S\1.blocks.\2.attn.w_msa.\3'),
    (r'features\.(\d)\.(\d+)\.mlp\.0\.(weight|bias)', r'S\1.blocks.\2.ffn.layers.0.0.\3'),
    (r'features\.(\d)\.(\d+)\.mlp\.3\.(weight|bias)', r'S\1.blocks.\2.ffn.layers.1.\3'),
    (r'features\.(\d)\.(reduction\.weight|norm\.weight|norm\.bias)', r'M\1.downsample.\2'),
)


def is_torchvision_swin(keys: Sequence[str]) -> bool:
    """Whether keys look like a torchvision ``swin_t/s/b`` classifier."""
    keys = set(keys)
    return 'features.0.0.weight' in keys and \
        'features.1.0.attn.relative_position_bias_table' in keys


def swin_merging_order(tensor: Tensor) -> Tensor:
    """A patch-merging ``reduction.weight`` / ``norm.*`` from the Swin paper's order
    (blocks of C channels for offsets (0,0), (1,0), (0,1), (1,1) as (row, col)) to
    ``nn.Unfold``'s (``c * 4 + row * 2 + col``) that MMDetection's PatchMerging uses."""
    if tensor.dim() == 2:
        out, four_c = tensor.shape
        blocks = tensor.reshape(out, 4, four_c // 4)[:, [0, 2, 1, 3], :]
        return blocks.transpose(1, 2).reshape(out, four_c)
    blocks = tensor.reshape(4, tensor.shape[0] // 4)[[0, 2, 1, 3], :]
    return blocks.transpose(0, 1).reshape(-1)


def swin_output_norms(channels: Sequence[int]) -> Dict[str, Tensor]:
    """``backbone.norm{i}`` at LayerNorm's init: the output norms a classifier lacks."""
    out: Dict[str, Tensor] = {}
    for i, c in enumerate(channels):
        out[f'backbone.norm{i}.weight'] = torch.ones(c)
        out[f'backbone.norm{i}.bias'] = torch.zeros(c)
    return out


def convert_swin_classification(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision ``swin_t/s/b`` state_dict -> MMDetection ``SwinTransformer`` keys."""
    renamed, mapping, unconverted = convert_by_rules(source, SWIN_CLASSIFICATION_RULES)
    state_dict: Dict[str, Tensor] = {}
    for old, new in mapping.items():
        value = renamed[new]
        if new.startswith('S'):  # features.{2k+1} -> stages.k
            index, rest = new[1:].split('.', 1)
            new = f'backbone.stages.{(int(index) - 1) // 2}.{rest}'
            if new.endswith('relative_position_index'):
                side = int(round(value.numel()**0.5))
                value = value.reshape(side, side)
        elif new.startswith('M'):  # features.{2k+2} -> stages.k.downsample
            index, rest = new[1:].split('.', 1)
            new = f'backbone.stages.{(int(index) - 2) // 2}.{rest}'
            value = swin_merging_order(value)
        state_dict[new] = value
    embed = state_dict['backbone.patch_embed.projection.weight'].shape[0]
    num_stages = 1 + sum(1 for k in state_dict if k.endswith('downsample.reduction.weight'))
    state_dict.update(swin_output_norms([embed * 2**i for i in range(num_stages)]))
    meta = {'source_format': 'torchvision', 'source_model': 'classification', 'classes': None,
            'dataset_meta': {}, 'added': 'backbone.norm{i}: output LayerNorms at init (1, 0)'}
    return ConversionResult(state_dict, meta, unconverted)


# ------------------------------------------------------------------- RegNetX (regnet_x_*)
# stem.{0: conv, 1: BN}; trunk_output.block{i}.block{i}-{j}.{proj, f.a, f.b, f.c}.{0: conv, 1: BN}
REGNET_CLASSIFICATION_RULES: KeyRules = (
    (r'stem\.0\.weight', r'backbone.conv1.weight'),
    (r'stem\.1\.' + _P, r'backbone.bn1.\1'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.proj\.(0|1)\.(.+)',
     r'backbone.layer\1.\2.downsample.\3.\4'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.f\.a\.0\.weight', r'backbone.layer\1.\2.conv1.weight'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.f\.a\.1\.' + _P, r'backbone.layer\1.\2.bn1.\3'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.f\.b\.0\.weight', r'backbone.layer\1.\2.conv2.weight'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.f\.b\.1\.' + _P, r'backbone.layer\1.\2.bn2.\3'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.f\.c\.0\.weight', r'backbone.layer\1.\2.conv3.weight'),
    (r'trunk_output\.block(\d)\.block\d-(\d+)\.f\.c\.1\.' + _P, r'backbone.layer\1.\2.bn3.\3'),
)


def is_torchvision_regnet(keys: Sequence[str]) -> bool:
    """Whether keys look like a torchvision ``regnet_x_*`` / ``regnet_y_*`` classifier."""
    keys = set(keys)
    return 'stem.0.weight' in keys and any(k.startswith('trunk_output.block1.') for k in keys)


def convert_regnet_classification(source: Mapping[str, Any]) -> ConversionResult:
    """torchvision ``regnet_x_*`` state_dict -> MMDetection ``RegNet`` keys.

    RegNetY's squeeze-excitation (``f.se.*``) has no place in MMDetection's RegNet (X only):
    those keys stay unconverted and are reported as such.
    """
    state_dict, _, unconverted = convert_by_rules(source, REGNET_CLASSIFICATION_RULES)
    meta = {'source_format': 'torchvision', 'source_model': 'classification',
            'style': 'pytorch', 'classes': None, 'dataset_meta': {}}
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)


# ---------------------------------------------------------------------------------------
# MobileNetV2 classifier and SSD300-VGG16 detector (the SSD / YOLOv3 families)
# ---------------------------------------------------------------------------------------

#: torchvision ``mobilenet_v2`` ``features.{n}`` (n = 1..17) -> mmft ``layer{i}.{j}``
_MBV2_BLOCKS = [(stage + 1, j) for stage, n in enumerate((1, 2, 3, 4, 3, 3, 1))
                for j in range(n)]


def _mobilenet_v2_rules() -> KeyRules:
    rules = [(r'features\.0\.0\.weight', 'backbone.conv1.conv.weight'),
             (r'features\.0\.1\.' + _P, r'backbone.conv1.bn.\1'),
             (r'features\.18\.0\.weight', 'backbone.conv2.conv.weight'),
             (r'features\.18\.1\.' + _P, r'backbone.conv2.bn.\1')]
    for n, (stage, j) in enumerate(_MBV2_BLOCKS, start=1):
        block = f'backbone.layer{stage}.{j}'
        # the expand-ratio-1 block has no expand conv, so its indices shift by one
        parts = (('0', 'depthwise_conv'), ('1', 'linear_conv'), ('2', None)) if n == 1 else \
            (('0', 'expand_conv'), ('1', 'depthwise_conv'), ('2', 'linear_conv'), ('3', None))
        for idx, name in parts:
            if name is None:  # the linear conv's BatchNorm
                rules.append((rf'features\.{n}\.conv\.{idx}\.' + _P,
                              rf'{block}.linear_conv.bn.\1'))
            elif name == 'linear_conv':
                rules.append((rf'features\.{n}\.conv\.{idx}\.weight', f'{block}.{name}.conv.weight'))
            else:
                rules.append((rf'features\.{n}\.conv\.{idx}\.0\.weight',
                              f'{block}.{name}.conv.weight'))
                rules.append((rf'features\.{n}\.conv\.{idx}\.1\.' + _P,
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
        if num_rows == TORCHVISION_COCO_NUM_OUTPUTS:
            source_index, classes = [i - 1 for i in COCO_CATEGORY_IDS], tuple(COCO_CLASSES)
        else:
            source_index, classes = list(range(num_rows - 1)), None
        state_dict[f'bbox_head.cls_convs.{level}.0.{name}'] = gather_class_rows(
            tensor, ClassRows(num_rows - 1, groups=anchors, background='first',
                              activation='softmax'),
            ClassRows(len(source_index), groups=anchors, background='last',
                      activation='softmax'), source_index)
    meta: Dict[str, Any] = {'source_format': 'torchvision', 'source_model': 'detection',
                            'architecture': 'ssd300_vgg16', 'classes': classes,
                            'dataset_meta': dataset_meta(classes)}
    if num_rows == TORCHVISION_COCO_NUM_OUTPUTS:
        meta['dropped_rows'] = f'class rows of unused COCO ids {unused_coco_ids()}'
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)
