"""``Scale``: one learnable scalar multiplying a tensor (mmcv's; key ``scale``, shape ``()``).

FCOS and ATSS keep one per level to let the shared regression convs output
each level's range of distances.
"""
import torch
from torch import Tensor, nn


class Scale(nn.Module):
    """``x * scale`` with a learnable scalar ``scale`` (initial value ``scale``)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale
