"""Caffe ``.caffemodel`` files -> mmft layout, read with the protobuf runtime only.

Reading: the file is a serialized ``NetParameter``; :mod:`.caffe_proto` declares
the handful of messages that carry weights. Both the current ``layer`` (field
100) and the old V1 ``layers`` (field 2, e.g. the VGG-16 ILSVRC model) lists are
read. A blob's shape is ``shape.dim`` or, in old files, ``num/channels/height/width``.

ResNet (He et al.'s ``ResNet-{50,101,152}-model.caffemodel``) layer names:
    ``conv1``, ``bn_conv1``, ``scale_conv1``; per block ``res{S}{B}_branch1`` /
    ``_branch2{a,b,c}`` with ``bn{S}{B}_...`` and ``scale{S}{B}_...``, where stage
    ``S`` in 2..5 is mmft's ``layer{S-1}`` and block ``B`` is a letter
    (``a`` = 0, ``b`` = 1, ...) or ``a``, ``b1``, ``b2``, ... in the deep models.
    Blobs: Convolution ``[weight(, bias)]``; BatchNorm ``[mean, var, scale_factor]``
    (the stored statistics are ``scale_factor`` times the real ones); Scale
    ``[gamma, beta]``. mmft's BatchNorm gets ``running_mean = mean / s``,
    ``running_var = var / s`` (``s = 0`` means zero statistics, as in Caffe),
    ``weight = gamma``, ``bias = beta``; Caffe's BatchNorm eps (1e-5) equals mmft's.
    A convolution bias followed by BatchNorm is folded into its ``running_mean``
    (``BN(x + b)`` with mean ``m`` equals ``BN(x)`` with mean ``m - b``).
    ``fc1000`` has no place in a backbone and is reported unconverted.

VGG-16 (``VGG_ILSVRC_16_layers.caffemodel``): ``conv{i}_{j}`` and ``fc6..8`` go
to torchvision's VGG-16 names (``backbone.features.{n}``, ``backbone.classifier.{n}``);
SSD's ``SSDVGG`` backbone takes them as its ``init_cfg`` checkpoint, its conv6 / conv7
decimated from fc6 / fc7 (:mod:`mmft.checkpoint.converters.vgg`).

Conventions of Caffe ImageNet weights: BGR input in 0..255, mean subtraction
only (``std=[1, 1, 1]``, ``bgr_to_rgb=False``), ResNet ``style='caffe'``.
"""
import os.path as osp
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch

from .base import ConversionResult, add_num_batches_tracked
from .caffe_proto import V1_LAYER_TYPES, caffe_messages


class CaffeLayer(NamedTuple):
    """One layer of a ``.caffemodel`` that holds blobs."""
    name: str
    type: str
    blobs: List[np.ndarray]


def _blob_to_array(blob) -> np.ndarray:
    if len(blob.double_data):
        values = np.asarray(blob.double_data, dtype=np.float64).astype(np.float32)
    else:
        values = np.asarray(blob.data, dtype=np.float32)
    if blob.HasField('shape'):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if int(np.prod(shape)) != values.size:
        raise ValueError(f'Caffe blob has {values.size} values but its shape says {shape}; '
                         'the .caffemodel is truncated or not a weights file')
    return values.reshape(shape)


def read_caffemodel(source: Union[str, Path, bytes]) -> List[CaffeLayer]:
    """The layers with blobs of a ``.caffemodel``, in file order."""
    if isinstance(source, bytes):
        data = source
    else:
        if not osp.isfile(str(source)):
            raise FileNotFoundError(f'Caffe model {str(source)!r} does not exist')
        with open(source, 'rb') as f:
            data = f.read()
    net = caffe_messages()['NetParameter']()
    try:
        net.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError: say which file and what it should be
        raise ValueError(f'{source!r} is not a Caffe NetParameter (.caffemodel): {exc}') from None
    layers = [CaffeLayer(l.name, l.type, [_blob_to_array(b) for b in l.blobs])
              for l in net.layer if len(l.blobs)]
    layers += [CaffeLayer(l.name, V1_LAYER_TYPES.get(l.type, f'V1:{l.type}'),
                          [_blob_to_array(b) for b in l.blobs])
               for l in net.layers if len(l.blobs)]
    return layers


_RESNET_LAYER = re.compile(r'(res|bn|scale)(\d)([a-z])(\d*)_branch(1|2[abc])')
_BRANCH_TO_INDEX = {'2a': '1', '2b': '2', '2c': '3'}
_VGG_CONV = re.compile(r'conv(\d)_(\d)')
# torchvision VGG-16: indices of the convs in ``features`` and of the fcs in ``classifier``
_VGG16_CONVS = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3),
                (5, 1), (5, 2), (5, 3)]
_VGG16_FEATURE_INDEX = dict(zip(_VGG16_CONVS, [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]))
_VGG16_FC_INDEX = {'fc6': 0, 'fc7': 3, 'fc8': 6}


def resnet_module_of(layer_name: str) -> Optional[Tuple[str, str]]:
    """Caffe ResNet layer name -> (kind ``conv``/``bn``/``scale``, mmft module path)."""
    if layer_name in ('conv1', 'bn_conv1', 'scale_conv1'):
        kind = {'conv1': 'conv', 'bn_conv1': 'bn', 'scale_conv1': 'scale'}[layer_name]
        return kind, 'backbone.conv1' if kind == 'conv' else 'backbone.bn1'
    match = _RESNET_LAYER.fullmatch(layer_name)
    if not match:
        return None
    prefix, stage, letter, number, branch = match.groups()
    block = int(number) if number else ord(letter) - ord('a')
    base = f'backbone.layer{int(stage) - 1}.{block}'
    kind = 'conv' if prefix == 'res' else prefix
    if branch == '1':
        return kind, base + ('.downsample.0' if kind == 'conv' else '.downsample.1')
    index = _BRANCH_TO_INDEX[branch]
    return kind, base + (f'.conv{index}' if kind == 'conv' else f'.bn{index}')


def _norm_of_conv(conv_path: str) -> str:
    if conv_path.endswith('downsample.0'):
        return conv_path[:-1] + '1'
    if conv_path == 'backbone.conv1':
        return 'backbone.bn1'
    return re.sub(r'conv(\d)$', r'bn\1', conv_path)


def convert_caffe(layers: List[CaffeLayer]) -> ConversionResult:
    """Map the blobs of Caffe ResNet / VGG-16 layers to mmft keys.

    Unconverted entries are named ``'{layer}.blobs.{i}'`` (or the whole layer).
    """
    state_dict: Dict[str, torch.Tensor] = {}
    unconverted: List[str] = []
    conv_biases: Dict[str, np.ndarray] = {}
    is_vgg = any(_VGG_CONV.fullmatch(l.name) for l in layers)
    for layer in layers:
        blobs = layer.blobs
        if is_vgg:
            conv = _VGG_CONV.fullmatch(layer.name)
            block_conv = (int(conv.group(1)), int(conv.group(2))) if conv else None
            if block_conv in _VGG16_FEATURE_INDEX:
                path = f'backbone.features.{_VGG16_FEATURE_INDEX[block_conv]}'
            elif layer.name in _VGG16_FC_INDEX:
                path = f'backbone.classifier.{_VGG16_FC_INDEX[layer.name]}'
            else:
                unconverted.append(layer.name)
                continue
            weight = blobs[0]
            if layer.name in _VGG16_FC_INDEX:
                weight = weight.reshape(weight.shape[-2], weight.shape[-1])
            state_dict[path + '.weight'] = torch.from_numpy(weight.copy())
            if len(blobs) > 1:
                state_dict[path + '.bias'] = torch.from_numpy(blobs[1].reshape(-1).copy())
            unconverted += [f'{layer.name}.blobs.{i}' for i in range(2, len(blobs))]
            continue
        found = resnet_module_of(layer.name)
        if found is None:
            unconverted.append(layer.name)
            continue
        kind, path = found
        if kind == 'conv':
            state_dict[path + '.weight'] = torch.from_numpy(blobs[0].copy())
            if len(blobs) > 1:
                conv_biases[path] = blobs[1].reshape(-1)
            unconverted += [f'{layer.name}.blobs.{i}' for i in range(2, len(blobs))]
        elif kind == 'bn':
            if len(blobs) < 2:
                raise ValueError(f'Caffe BatchNorm {layer.name!r} has {len(blobs)} blobs, '
                                 'expected mean, variance and scale factor')
            factor = float(blobs[2].reshape(-1)[0]) if len(blobs) > 2 else 1.0
            factor = 0.0 if factor == 0 else 1.0 / factor
            state_dict[path + '.running_mean'] = torch.from_numpy(blobs[0].reshape(-1) * factor)
            state_dict[path + '.running_var'] = torch.from_numpy(blobs[1].reshape(-1) * factor)
        else:  # Scale: gamma, beta
            state_dict[path + '.weight'] = torch.from_numpy(blobs[0].reshape(-1).copy())
            if len(blobs) > 1:
                state_dict[path + '.bias'] = torch.from_numpy(blobs[1].reshape(-1).copy())
            else:
                state_dict[path + '.bias'] = torch.zeros(blobs[0].size)
    for conv_path, bias in conv_biases.items():
        mean_key = _norm_of_conv(conv_path) + '.running_mean'
        if mean_key in state_dict:
            state_dict[mean_key] = state_dict[mean_key] - torch.from_numpy(bias)
        else:
            unconverted.append(f'{conv_path} bias (no BatchNorm after it to fold into)')
    # ImageNet classifiers: a fine-tuning load restores their backbone only
    meta = {'source_format': 'caffe', 'source_model': 'classification',
            'architecture': 'vgg16' if is_vgg else 'resnet', 'classes': None, 'dataset_meta': {}}
    if not is_vgg:
        meta['style'] = 'caffe'
    return ConversionResult(add_num_batches_tracked(state_dict), meta, unconverted)
