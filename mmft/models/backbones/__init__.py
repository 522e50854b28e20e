"""Backbones (registered in MODELS)."""
from .resnet import ResNet
from .hrnet import HRNet
from .regnet import RegNet
from .resnext import ResNeXt
from .swin import SwinTransformer

__all__ = ['ResNet', 'ResNeXt', 'RegNet', 'SwinTransformer', 'HRNet']
