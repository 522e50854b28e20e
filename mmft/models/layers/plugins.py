"""Build block plugins (``ContextBlock``, ...) from configs, named as mmcv names them."""
import copy
import re
from typing import Dict, Tuple, Union

import torch.nn as nn

from mmft.registry import MODELS


def plugin_abbr(cls: type) -> str:
    """A plugin's name stem: its ``_abbr_``, else its class name in snake_case."""
    if hasattr(cls, '_abbr_'):
        return cls._abbr_
    return re.sub(r'(?<!^)(?=[A-Z])', '_', cls.__name__).lower()


def build_plugin_layer(cfg: Dict, postfix: Union[int, str] = '',
                       **kwargs) -> Tuple[str, nn.Module]:
    """Build ``cfg`` (a ``type`` registered in MODELS) with ``kwargs``.

    Returns:
        ``(name, layer)``: the name (``'context_block'`` + postfix) is the plugin's
        state_dict prefix inside its block.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f"plugin cfg must be a dict with a 'type' key, got {cfg!r}")
    cfg = copy.deepcopy(dict(cfg))
    layer_type = cfg.pop('type')
    cls = MODELS.get(layer_type) if isinstance(layer_type, str) else layer_type
    if cls is None:
        raise KeyError(f'plugin type {layer_type!r} is not registered in mmft; '
                       "available: 'ContextBlock'")
    return plugin_abbr(cls) + str(postfix), cls(**kwargs, **cfg)
