"""The official Swin Transformer release (github.com/microsoft/Swin-Transformer) -> mmft.

These are the ``swin_{tiny,small,base}_patch4_window{7,12}_*.pth`` files MMDetection's
Swin configs load with ``convert_weights=True``. Keys: ``patch_embed.{proj,norm}``,
``layers.{i}.blocks.{j}.{norm1, attn.{qkv, proj, relative_position_bias_table,
relative_position_index}, norm2, mlp.{fc1, fc2}}``, ``layers.{i}.downsample.{reduction,
norm}``, ``norm``, ``head``; shifted blocks may also hold an ``attn_mask`` buffer. mmft
renames them to MMDetection's ``SwinTransformer`` layout, reorders the patch-merging
channels (:func:`~.torchvision.swin_merging_order`) and adds the detector's output norms
at LayerNorm's init. ``norm``, ``head`` and ``attn_mask`` are left unconverted.
"""
from typing import Any, Dict, Mapping, Sequence

from torch import Tensor

from .base import ConversionResult, KeyRules, convert_by_rules
from .torchvision import swin_merging_order, swin_output_norms

SWIN_OFFICIAL_RULES: KeyRules = (
    (r'patch_embed\.proj\.(weight|bias)', r'backbone.patch_embed.projection.\1'),
    (r'patch_embed\.norm\.(weight|bias)', r'backbone.patch_embed.norm.\1'),
    (r'absolute_pos_embed', r'backbone.absolute_pos_embed'),
    (r'layers\.(\d)\.blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)',
     r'backbone.stages.\1.blocks.\2.\3.\4'),
    (r'layers\.(\d)\.blocks\.(\d+)\.attn\.(qkv\.weight|qkv\.bias|proj\.weight|proj\.bias|'
     r'relative_position_bias_table|relative_position_index)',
     r'backbone.stages.\1.blocks.\2.attn.w_msa.\3'),
    (r'layers\.(\d)\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias)',
     r'backbone.stages.\1.blocks.\2.ffn.layers.0.0.\3'),
    (r'layers\.(\d)\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)',
     r'backbone.stages.\1.blocks.\2.ffn.layers.1.\3'),
    (r'layers\.(\d)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)',
     r'backbone.stages.\1.downsample.\2'),
)


def is_swin_official(keys: Sequence[str]) -> bool:
    """Whether keys look like the official Swin release's."""
    keys = set(keys)
    return 'patch_embed.proj.weight' in keys and \
        'layers.0.blocks.0.attn.relative_position_bias_table' in keys


def convert_swin_official(source: Mapping[str, Any]) -> ConversionResult:
    """Official Swin state_dict (the ``model`` entry) -> MMDetection ``SwinTransformer`` keys."""
    renamed, _, unconverted = convert_by_rules(source, SWIN_OFFICIAL_RULES)
    state_dict: Dict[str, Tensor] = {}
    for key, value in renamed.items():
        if '.downsample.' in key:
            value = swin_merging_order(value)
        state_dict[key] = value
    embed = state_dict['backbone.patch_embed.projection.weight'].shape[0]
    num_stages = 1 + sum(1 for k in state_dict if k.endswith('downsample.reduction.weight'))
    state_dict.update(swin_output_norms([embed * 2**i for i in range(num_stages)]))
    meta = {'source_format': 'swin', 'source_model': 'classification', 'classes': None,
            'dataset_meta': {}, 'added': 'backbone.norm{i}: output LayerNorms at init (1, 0)'}
    return ConversionResult(state_dict, meta, unconverted)
