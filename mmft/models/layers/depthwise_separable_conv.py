"""DepthwiseSeparableConvModule: mmcv's depthwise-then-pointwise conv pair (SSDLite, RTMDet)."""
from typing import Dict, Optional

from torch import Tensor, nn

from .conv_module import ConvModule


class DepthwiseSeparableConvModule(nn.Module):
    """Depthwise ``ConvModule`` then pointwise 1x1 ``ConvModule`` (mmcv's names)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, conv_cfg: Optional[Dict] = None,
                 norm_cfg: Optional[Dict] = None, act_cfg: Optional[Dict] = dict(type='ReLU')
                 ) -> None:
        super().__init__()
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.depthwise_conv = ConvModule(in_channels, in_channels, kernel_size, stride=stride,
                                         padding=padding, groups=in_channels, **cfg)
        self.pointwise_conv = ConvModule(in_channels, out_channels, 1, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))
