"""What every backbone does the same way: MMDetection's default init, frozen norms, pretrained files."""
from typing import Any, Dict, List, Optional, Union

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.checkpoint.pretrained import load_pretrained_init, pretrained_cfgs


def init_convs_and_norms(module: nn.Module) -> None:
    """Kaiming-normal convs (fan_out, relu) with zero biases, unit norms: MMDetection's
    default backbone initialisation."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def norms_to_eval(module: nn.Module) -> None:
    """Every BatchNorm of ``module`` in eval mode (``norm_eval``: statistics stay fixed)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


def freeze_modules(*modules: nn.Module) -> None:
    """Eval mode and no gradient for ``modules`` (frozen stages)."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


def load_pretrained_cfgs(module: nn.Module, init_cfg: Union[None, Dict, List[Dict]], name: str,
                         **kwargs: Any) -> Optional[Any]:
    """Load every ``init_cfg=dict(type='Pretrained', ...)`` entry exactly; returns the last
    read checkpoint (None without one). ``kwargs`` go to :func:`load_pretrained_init`."""
    loaded = None
    for cfg in pretrained_cfgs(init_cfg):
        loaded = load_pretrained_init(module, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                      name=name, **kwargs)
    return loaded
