"""Backbones (registered in MODELS)."""
from .darknet import Darknet
from .cspnext import CSPNeXt
from .csp_darknet import CSPDarknet
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet
from .hrnet import HRNet
from .regnet import RegNet
from .resnext import ResNeXt
from .swin import SwinTransformer
from .vgg import SSDVGG

__all__ = ['ResNet', 'ResNeXt', 'RegNet', 'SwinTransformer', 'HRNet', 'SSDVGG', 'MobileNetV2',
           'Darknet', 'CSPNeXt', 'CSPDarknet']
