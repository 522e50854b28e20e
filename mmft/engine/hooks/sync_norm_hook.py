"""``SyncNormHook`` (MMDetection 3.x name): before each validation, every process's
BatchNorm statistics (and affine parameters) become their mean over the processes, so the
model that is evaluated and saved is the same on every rank (YOLOX trains with plain BN).
On one process it does nothing."""
from collections import OrderedDict

import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from torch import nn

from mmft.registry import HOOKS


def get_norm_states(module: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """The state of every norm layer of ``module`` (BatchNorm, SyncBatchNorm, ...), keyed
    as in ``module.state_dict()``."""
    states = OrderedDict()
    for name, child in module.named_modules():
        if isinstance(child, nn.modules.batchnorm._NormBase):
            for key, value in child.state_dict().items():
                states[f'{name}.{key}' if name else key] = value
    return states


@HOOKS.register_module()
class SyncNormHook(Hook):
    """Average the norm states over the processes before validation."""

    def before_val_epoch(self, runner) -> None:
        _, world_size = get_dist_info()
        if world_size == 1:
            return
        module = runner.model
        states = get_norm_states(module)
        if not states:
            return
        averaged = OrderedDict()
        for key, value in states.items():
            # the integer batch counters are averaged as floats and cast back
            tensor = value.detach().clone().float()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            averaged[key] = (tensor / world_size).to(value.dtype)
        module.load_state_dict(averaged, strict=False)
