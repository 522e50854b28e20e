"""``BatchNorm2d`` that stores no activation when it is frozen.

A BN layer in eval mode with frozen affine parameters (``norm_eval=True``,
``requires_grad=False``: how detectors are fine-tuned) is a fixed per-channel
affine map. ``F.batch_norm`` still saves its whole input for the backward; as
``x * scale + shift`` the backward needs only ``scale``. In ResNet-50 that is
the output of every convolution: about 40 % of the backbone's saved activations.
Parameters, buffers and checkpoint keys are ``nn.BatchNorm2d``'s.
"""
import torch
import torch.nn as nn
from torch import Tensor


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d``; when frozen, computed as torchvision's ``FrozenBatchNorm2d`` is.

    Frozen means: eval mode, running statistics, and no affine parameter that
    needs a gradient. The fast path is only taken when a graph is recorded
    through the layer; otherwise the fused kernel is the faster one.
    """

    def _is_frozen(self) -> bool:
        if self.training or self.running_mean is None or self.running_var is None:
            return False
        return not (self.affine and (self.weight.requires_grad or self.bias.requires_grad))

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad and x.dim() == 4
                and self._is_frozen()):
            return super().forward(x)
        scale = torch.rsqrt(self.running_var + self.eps)
        shift = -self.running_mean * scale
        if self.affine:
            scale = scale * self.weight
            shift = shift * self.weight + self.bias
        # addcmul saves only ``scale`` (x's gradient is grad * scale), not x
        return torch.addcmul(shift.view(1, -1, 1, 1).to(x.dtype), x,
                             scale.view(1, -1, 1, 1).to(x.dtype))
