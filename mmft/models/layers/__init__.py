"""Small building blocks shared by backbones, necks and heads."""
from .conv_module import (ConvModule, build_activation_layer, build_conv_layer,
                          build_norm_layer)
from .scale import Scale

__all__ = ['ConvModule', 'build_norm_layer', 'build_conv_layer', 'build_activation_layer', 'Scale']
