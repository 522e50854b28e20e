"""Conv + norm + activation block, with mmcv's submodule names.

Submodule names are part of the checkpoint format: ``conv`` for the
convolution, the norm named by its type (``bn`` for BN/SyncBN, ``gn`` for GN,
``ln`` for LN, ``in`` for IN) and ``activate`` for the activation, so an
MMDetection key such as ``neck.lateral_convs.0.conv.weight`` maps one to one.
"""
import copy
from typing import Dict, Optional, Tuple, Union

import torch.nn as nn
from torch import Tensor

from mmft.registry import MODELS
from .batch_norm import BatchNorm2d

# type -> (abbreviation used in parameter names, constructor)
_NORM_LAYERS = {
    # BatchNorm2d: nn.BatchNorm2d that saves no activation when frozen
    'BN': ('bn', BatchNorm2d),
    'BN1d': ('bn', nn.BatchNorm1d),
    'BN2d': ('bn', BatchNorm2d),
    'SyncBN': ('bn', nn.SyncBatchNorm),
    'GN': ('gn', nn.GroupNorm),
    'LN': ('ln', nn.LayerNorm),
    'IN': ('in', nn.InstanceNorm2d),
}

_ACT_LAYERS = {
    'ReLU': nn.ReLU,
    'LeakyReLU': nn.LeakyReLU,
    'ReLU6': nn.ReLU6,
    'PReLU': nn.PReLU,
    'ELU': nn.ELU,
    'Sigmoid': nn.Sigmoid,
    'Tanh': nn.Tanh,
    'GELU': nn.GELU,
    'SiLU': nn.SiLU,
    'Swish': nn.SiLU,
}
# activations whose constructor takes ``inplace``
_INPLACE_ACTS = {'ReLU', 'LeakyReLU', 'ReLU6', 'ELU', 'SiLU', 'Swish'}


def build_norm_layer(cfg: Dict, num_features: int,
                     postfix: Union[int, str] = '') -> Tuple[str, nn.Module]:
    """Build a normalisation layer from a config.

    Args:
        cfg: ``dict(type='BN'|'SyncBN'|'GN'|..., requires_grad=True, **kwargs)``;
            GN needs ``num_groups``. Other keys go to the torch constructor
            (``eps``, ``momentum``, ...).
        num_features: channels to normalise.
        postfix: appended to the name, e.g. ``1`` gives ``'bn1'``.

    Returns:
        ``(name, layer)``, where name is e.g. ``'bn'``, ``'gn1'``.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f"norm_cfg must be a dict with a 'type' key, got {cfg!r}")
    cfg = copy.deepcopy(dict(cfg))
    layer_type = cfg.pop('type')
    if layer_type not in _NORM_LAYERS:
        raise KeyError(f'norm_cfg type {layer_type!r} is not supported; '
                       f'use one of {sorted(_NORM_LAYERS)}')
    abbr, layer_cls = _NORM_LAYERS[layer_type]
    name = abbr + str(postfix)
    requires_grad = cfg.pop('requires_grad', True)
    cfg.setdefault('eps', 1e-5)
    if layer_type == 'GN':
        if 'num_groups' not in cfg:
            raise KeyError("norm_cfg type 'GN' needs 'num_groups', "
                           "e.g. dict(type='GN', num_groups=32)")
        layer = layer_cls(num_channels=num_features, **cfg)
    elif layer_type == 'LN':
        layer = layer_cls(num_features, **cfg)
    else:
        layer = layer_cls(num_features, **cfg)
        if layer_type == 'SyncBN' and hasattr(layer, '_specify_ddp_gpu_num'):
            layer._specify_ddp_gpu_num(1)
    for param in layer.parameters():
        param.requires_grad = requires_grad
    return name, layer


#: conv types beyond ``nn.Conv2d`` (``'DCN'``, ``'DCNv2'``: see deform_conv.py), by type name
CONV_LAYERS: Dict[str, type] = {}


def build_conv_layer(cfg: Optional[Dict], *args, **kwargs) -> nn.Module:
    """Build a convolution; ``None`` or ``dict(type='Conv2d'|'Conv')`` gives ``nn.Conv2d``,
    other types come from :data:`CONV_LAYERS`."""
    if cfg is None:
        layer_type = 'Conv2d'
    else:
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise TypeError(f"conv_cfg must be None or a dict with a 'type' key, got {cfg!r}")
        layer_type = cfg['type']
        kwargs.update({k: v for k, v in cfg.items() if k != 'type'})
    if layer_type in ('Conv', 'Conv2d'):
        return nn.Conv2d(*args, **kwargs)
    if layer_type in CONV_LAYERS:
        return CONV_LAYERS[layer_type](*args, **kwargs)
    raise KeyError(f'conv_cfg type {layer_type!r} is not supported; '
                   f"use None, dict(type='Conv2d') or one of {sorted(CONV_LAYERS)}")


def build_activation_layer(cfg: Dict) -> nn.Module:
    """Build an activation such as ``dict(type='ReLU', inplace=True)``."""
    cfg = copy.deepcopy(dict(cfg))
    layer_type = cfg.pop('type')
    if layer_type not in _ACT_LAYERS:
        raise KeyError(f'act_cfg type {layer_type!r} is not supported; '
                       f'use one of {sorted(_ACT_LAYERS)}')
    if layer_type not in _INPLACE_ACTS:
        cfg.pop('inplace', None)
    return _ACT_LAYERS[layer_type](**cfg)


@MODELS.register_module()
class ConvModule(nn.Module):
    """``conv -> norm -> activation``, parameters named as mmcv's ConvModule.

    Args:
        bias: ``'auto'`` adds a bias only without a norm layer (the norm's
            shift makes it redundant).
        conv_cfg: ``None`` for ``nn.Conv2d``.
        norm_cfg: e.g. ``dict(type='BN')``; ``None`` for no norm.
        act_cfg: e.g. ``dict(type='ReLU')``; ``None`` for no activation.
        inplace: in-place activation.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1,
                 padding: Union[int, Tuple[int, int]] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 groups: int = 1,
                 bias: Union[bool, str] = 'auto',
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None,
                 act_cfg: Optional[Dict] = dict(type='ReLU'),
                 inplace: bool = True) -> None:
        super().__init__()
        if bias != 'auto' and not isinstance(bias, bool):
            raise TypeError(f"ConvModule bias must be 'auto' or a bool, got {bias!r}")
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.inplace = inplace
        self.with_norm = norm_cfg is not None
        self.with_activation = act_cfg is not None
        if bias == 'auto':
            bias = not self.with_norm
        self.with_bias = bias

        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size,
                                     stride=stride, padding=padding, dilation=dilation,
                                     groups=groups, bias=bias)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = self.conv.kernel_size
        self.stride = self.conv.stride
        self.padding = self.conv.padding
        self.dilation = self.conv.dilation
        self.groups = groups

        if self.with_norm:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        else:
            self.norm_name = None

        if self.with_activation:
            act_cfg_ = dict(act_cfg)
            act_cfg_.setdefault('inplace', inplace)
            self.activate = build_activation_layer(act_cfg_)

        self.init_weights()

    @property
    def norm(self) -> Optional[nn.Module]:
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self) -> None:
        """Kaiming for the conv (as mmcv, which overrides a parent's init_cfg), 1/0 for the norm."""
        if self.with_activation and self.act_cfg['type'] == 'LeakyReLU':
            nonlinearity, a = 'leaky_relu', self.act_cfg.get('negative_slope', 0.01)
        else:
            nonlinearity, a = 'relu', 0
        nn.init.kaiming_normal_(self.conv.weight, a=a, mode='fan_out', nonlinearity=nonlinearity)
        if self.conv.bias is not None:
            nn.init.constant_(self.conv.bias, 0)
        norm = self.norm
        if norm is not None and getattr(norm, 'weight', None) is not None:
            nn.init.constant_(norm.weight, 1)
            nn.init.constant_(norm.bias, 0)

    def forward(self, x: Tensor, activate: bool = True, norm: bool = True) -> Tensor:
        x = self.conv(x)
        if norm and self.with_norm:
            x = self.norm(x)
        if activate and self.with_activation:
            x = self.activate(x)
        return x
