"""VGG-16 classifiers -> SSD's VGG: fc6 / fc7 as decimated convolutions.

SSD replaces VGG-16's ``fc6`` (25088 -> 4096, i.e. 4096 filters of 512x7x7) and ``fc7``
(4096 -> 4096) with a 3x3 conv of dilation 6 (512 -> 1024) and a 1x1 conv (1024 -> 1024),
initialised from the fc weights by decimation (the SSD paper's "atrous" VGG, as in the
reduced VGG-16 its authors ship): every 4th output filter (and, for fc7, every 4th input),
and the 7x7 kernel subsampled at rows and columns 0, 3, 6::

    conv6.weight = fc6.weight.view(4096, 512, 7, 7)[::4, :, ::3, ::3]   # (1024, 512, 3, 3)
    conv7.weight = fc7.weight[::4, ::4].view(1024, 1024, 1, 1)

In torchvision's / mmft's names: ``classifier.0`` is fc6 and ``classifier.3`` fc7 (what
the torchvision and Caffe VGG-16 files give), ``features.31`` / ``features.33`` are SSDVGG's
convs. The classifier tensors stay in the dict (unused by SSDVGG, reported as such).
"""
from typing import Dict

from torch import Tensor

FC6, FC7 = 'classifier.0', 'classifier.3'
CONV6, CONV7 = 'features.31', 'features.33'


def _prefixes(state_dict: Dict[str, Tensor]):
    for key in state_dict:
        if key.endswith(FC6 + '.weight'):
            yield key[:-len(FC6 + '.weight')]


def add_ssd_fc_convs(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """``state_dict`` plus SSDVGG's fc6/fc7 convs decimated from a VGG-16 classifier.

    Applies under any prefix (``''``, ``'backbone.'``) that has ``classifier.0`` and no
    ``features.31``; other dicts come back unchanged.

    Raises:
        ValueError: the fc layers do not have VGG-16's shapes.
    """
    out = dict(state_dict)
    for p in list(_prefixes(state_dict)):
        if p + CONV6 + '.weight' in state_dict or p + FC7 + '.weight' not in state_dict:
            continue
        fc6, fc7 = state_dict[p + FC6 + '.weight'], state_dict[p + FC7 + '.weight']
        if tuple(fc6.shape) != (4096, 512 * 7 * 7) or tuple(fc7.shape) != (4096, 4096):
            raise ValueError(f'{p}{FC6}/{FC7} have shapes {tuple(fc6.shape)} / '
                             f'{tuple(fc7.shape)}, not VGG-16\'s (4096, 25088) / (4096, 4096); '
                             'SSDVGG can only decimate a VGG-16 classifier')
        out[p + CONV6 + '.weight'] = fc6.view(4096, 512, 7, 7)[::4, :, ::3, ::3].contiguous()
        out[p + CONV7 + '.weight'] = fc7[::4, ::4].reshape(1024, 1024, 1, 1).contiguous()
        for fc, conv in ((FC6, CONV6), (FC7, CONV7)):
            if p + fc + '.bias' in state_dict:
                out[p + conv + '.bias'] = state_dict[p + fc + '.bias'][::4].contiguous()
    return out
