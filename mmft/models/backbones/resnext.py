"""ResNeXt backbone: ResNet with grouped 3x3 convs (MMDetection 3.x's ``ResNeXt``).

Same state-dict keys as :class:`ResNet` (and torchvision's ``resnext50_32x4d``,
``resnext101_32x8d``, ``resnext101_64x4d``); only the bottleneck width differs:
``width = floor(planes * base_width / base_channels) * groups`` for the 3x3 conv (and
conv1 / bn1 / bn2), e.g. 128 in the first stage of 32x4d. ``groups=32, base_width=4``
is ResNeXt-*-32x4d, ``groups=64, base_width=4`` is 64x4d.
"""
from typing import Any, Dict

from mmft.registry import MODELS
from .resnet import Bottleneck, ResNet


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt (depth 50, 101 or 152); every other argument as :class:`ResNet`.

    Args:
        groups: groups of the 3x3 convs (the cardinality, 32 in 32x4d).
        base_width: channels per group in the first stage (4 in 32x4d).
    """

    arch_settings = {
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, groups: int = 1, base_width: int = 4, **kwargs) -> None:
        if groups < 1 or base_width < 1:
            raise ValueError(f'ResNeXt groups={groups} and base_width={base_width} must be '
                             '>= 1 (32x4d: groups=32, base_width=4)')
        self.groups = groups
        self.base_width = base_width
        super().__init__(**kwargs)

    def _stage_extras(self, stage: int) -> Dict[str, Any]:
        extras = super()._stage_extras(stage)
        extras.update(groups=self.groups, base_width=self.base_width,
                      base_channels=self.base_channels)
        return extras

    @property
    def model_name(self) -> str:
        return f'ResNeXt-{self.depth}-{self.groups}x{self.base_width}d'
