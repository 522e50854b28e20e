"""Small building blocks shared by backbones, necks and heads."""
from .conv_module import (ConvModule, build_activation_layer, build_conv_layer,
                          build_norm_layer)
from .nms import batched_nms, check_nms_cfg, check_nms_cfgs, soft_nms
from .scale import Scale

__all__ = ['ConvModule', 'build_norm_layer', 'build_conv_layer', 'build_activation_layer',
           'batched_nms', 'check_nms_cfg', 'check_nms_cfgs', 'soft_nms', 'Scale']
