"""Transformer parts shared by vision backbones, named as mmcv / MMDetection name them.

* :class:`PatchEmbed`: ``projection`` (conv, kernel = stride = patch size) + ``norm``;
  input ``(B, C, H, W)`` -> tokens ``(B, H' * W', D)`` and ``(H', W')``.
* :class:`PatchMerging`: 2x2 neighbourhoods -> ``norm`` (4C) -> ``reduction`` (4C -> 2C,
  no bias). Channel order of the 4C vector: ``c * 4 + (dy * 2 + dx)`` (``nn.Unfold``'s,
  which MMDetection uses); the Swin paper's / torchvision's order is
  ``(x00, x10, x01, x11)`` blocks of C, which converters reorder.
* :class:`FFN`: ``layers = Sequential(Sequential(Linear, act, Dropout), Linear, Dropout)``,
  the residual added outside the dropout path (mmcv's ``FFN(num_fcs=2)``).
Both pad the bottom / right edge with zeros when the size does not divide ('corner').
"""
from typing import Dict, Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .conv_module import build_activation_layer, build_norm_layer


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's whole residual branch with ``drop_prob``."""

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _pad_to(x: Tensor, multiple: int) -> Tensor:
    """``(B, C, H, W)``: zeros at the bottom / right up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (multiple - w % multiple) % multiple, 0, (multiple - h % multiple)
                     % multiple))


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens (``projection``, optional ``norm``)."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int,
                 norm_cfg: Optional[Dict] = None) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1] if norm_cfg else None

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.projection(_pad_to(x, self.patch_size))
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x, hw


class PatchMerging(nn.Module):
    """Halve the resolution, double the channels (see the module docstring for the order)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2,
                 norm_cfg: Optional[Dict] = dict(type='LN')) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.sampler = nn.Unfold(kernel_size=stride, stride=stride)
        self.norm = build_norm_layer(norm_cfg, stride * stride * in_channels)[1] \
            if norm_cfg else None
        self.reduction = nn.Linear(stride * stride * in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tuple[Tensor, Tuple[int, int]]:
        b, length, c = x.shape
        h, w = hw
        if length != h * w:
            raise ValueError(f'PatchMerging: {length} tokens do not form a {h}x{w} map')
        x = _pad_to(x.transpose(1, 2).reshape(b, c, h, w), self.stride)
        out_hw = (x.shape[2] // self.stride, x.shape[3] // self.stride)
        x = self.sampler(x).transpose(1, 2)  # B, H'W', C * s * s
        if self.norm is not None:
            x = self.norm(x)
        return self.reduction(x), out_hw


class FFN(nn.Module):
    """Two-layer MLP with residual (``identity + drop_path(mlp(x))``)."""

    def __init__(self, embed_dims: int, feedforward_channels: int, ffn_drop: float = 0.,
                 drop_path: float = 0., act_cfg: Dict = dict(type='GELU')) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels),
                          build_activation_layer(act_cfg), nn.Dropout(ffn_drop)),
            nn.Linear(feedforward_channels, embed_dims), nn.Dropout(ffn_drop))
        self.dropout_layer = DropPath(drop_path)

    def forward(self, x: Tensor, identity: Optional[Tensor] = None) -> Tensor:
        identity = x if identity is None else identity
        return identity + self.dropout_layer(self.layers(x))
