"""Small building blocks shared by backbones, necks and heads."""
from .context_block import ContextBlock
from .conv_module import (CONV_LAYERS, ConvModule, build_activation_layer, build_conv_layer,
                          build_norm_layer)
from .deform_conv import DeformConv2dPack, ModulatedDeformConv2dPack
from .ema import ExpMomentumEMA
from .nms import batched_nms, check_nms_cfg, check_nms_cfgs, soft_nms
from .plugins import build_plugin_layer
from .scale import Scale

__all__ = ['ConvModule', 'build_norm_layer', 'build_conv_layer', 'build_activation_layer',
           'CONV_LAYERS', 'DeformConv2dPack', 'ModulatedDeformConv2dPack', 'ContextBlock',
           'build_plugin_layer', 'batched_nms', 'check_nms_cfg', 'check_nms_cfgs', 'soft_nms',
           'Scale', 'ExpMomentumEMA']
