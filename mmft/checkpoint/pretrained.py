"""Backbone ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``: the exact load.

Every mmft backbone's ``init_weights`` calls :func:`load_pretrained_init` after its own
initialisation. The checkpoint (local file, URL or ``torchvision://`` /
``open-mmlab://`` name) is read safely and converted like any other
(:func:`read_checkpoint`), then loaded in exact mode: a backbone whose
pretrained weights cannot be loaded stops the run instead of training from
random initialisation. (MMEngine's own ``PretrainedInit`` would read the file
with a plain ``torch.load`` and load it non-strictly.)
"""
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from mmengine.logging import MMLogger
from torch import nn

from .exact import load_exact
from .reader import LoadedCheckpoint, read_checkpoint


def pretrained_cfgs(init_cfg: Union[None, Dict, Sequence[Dict]]) -> List[Dict[str, Any]]:
    """The ``type='Pretrained'`` entries of an ``init_cfg`` (a dict or a list of dicts)."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']


def load_pretrained_init(module: nn.Module, checkpoint: str, prefix: Optional[str] = None,
                         name: Optional[str] = None,
                         keep_init: Optional[Callable[[str], bool]] = None,
                         adapt: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None
                         ) -> LoadedCheckpoint:
    """Load a backbone's pretrained weights exactly (see the module docstring).

    Args:
        module: the backbone.
        checkpoint: path, URL or model-zoo name.
        prefix: keys to take (stripped), e.g. ``'backbone.'``; without it,
            ``'backbone.'`` when the file has such keys (a detector or a converted
            file), else the keys as they are (an ImageNet state_dict).
        name: how to call the backbone in messages (``'ResNet-50'``).
        keep_init: says which of the module's keys an ImageNet file cannot have (layers a
            detector adds to the classifier: deformable-conv offsets, context blocks);
            those the file lacks keep the module's own initialisation, and the log says so.
        adapt: the backbone's own step on the read state_dict (SSDVGG derives its
            fc6/fc7 convs from a VGG-16 classifier's fc layers).

    Returns:
        The read checkpoint (its meta says e.g. the ResNet style it was trained with).

    Raises:
        FileNotFoundError, RemoteCheckpointError: the file cannot be had.
        KeyError: ``prefix`` matches no key.
        ValueError: a backbone tensor is missing from the file or has another shape.
    """
    name = name or type(module).__name__
    try:
        loaded = read_checkpoint(checkpoint)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f'{name} init_cfg checkpoint: {exc}') from None
    if adapt is not None:
        loaded = replace(loaded, state_dict=adapt(loaded.state_dict))
    if prefix is None and any(k.startswith('backbone.') for k in loaded.state_dict):
        prefix = 'backbone.'
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    kept = []
    if keep_init is not None:
        for key, value in module.state_dict().items():
            full = (prefix or '') + key
            if keep_init(key) and full not in loaded.state_dict:
                loaded.state_dict[full] = value.detach().clone()
                kept.append(key)
    try:
        unexpected = load_exact(module, loaded, source=f'{name} init_cfg {checkpoint}',
                                prefix=prefix)
    except ValueError as exc:
        raise ValueError(f'{exc} (init_cfg of {name}: set its depth / width / style to the '
                         "checkpoint's, or give prefix= for keys under another prefix)") \
            from None
    unused = sorted(set(unexpected) | set(loaded.unconverted))
    MMLogger.get_current_instance().info(
        f'{name} init_cfg: every tensor from {checkpoint} ({loaded.format})'
        + (f'; not used: {unused[:10]}{" ..." if len(unused) > 10 else ""}' if unused else '')
        + (f'; kept at init (not in the file): {len(kept)} tensors, e.g. {kept[:3]}'
           if kept else ''))
    return loaded
