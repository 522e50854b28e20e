"""Foreign checkpoints built in memory (nothing is downloaded): Detectron2 dicts, Caffe nets.

Shared by the converter tests, the fine-tuning load tests and the ResNet init_cfg
tests. Values are random; the tests compare against the arrays returned here.
"""
import pickle
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import torch

from mmft.checkpoint.converters.caffe_proto import caffe_messages


def resnet50_blocks(base: int = 64) -> Iterator[Tuple[int, int, int, int, int]]:
    """``(stage 2..5, block index, in, mid, out channels)`` of a ResNet-50 of ``base`` width."""
    inplanes = base
    for stage, (blocks, mult) in zip(range(2, 6), [(3, 1), (4, 2), (6, 4), (3, 8)]):
        for j in range(blocks):
            yield stage, j, inplanes, base * mult, base * mult * 4
            inplanes = base * mult * 4


def detectron2_mask_rcnn_r50_fpn(num_classes: int = 80, seed: int = 0) -> Dict[str, np.ndarray]:
    """Every parameter of Detectron2's mask_rcnn_R_50_FPN, in its naming, as numpy arrays."""
    rng = np.random.default_rng(seed)
    d: Dict[str, np.ndarray] = {}

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def norm(prefix, c):
        d[prefix + '.weight'] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        d[prefix + '.bias'] = arr(c)
        d[prefix + '.running_mean'] = arr(c)
        d[prefix + '.running_var'] = rng.uniform(0.5, 1.5, c).astype(np.float32)

    b = 'backbone.bottom_up.'
    d[b + 'stem.conv1.weight'] = arr(64, 3, 7, 7)
    norm(b + 'stem.conv1.norm', 64)
    for stage, j, cin, mid, cout in resnet50_blocks():
        p = f'{b}res{stage}.{j}.'
        if j == 0:
            d[p + 'shortcut.weight'] = arr(cout, cin, 1, 1)
            norm(p + 'shortcut.norm', cout)
        for k, (ci, co, ks) in enumerate([(cin, mid, 1), (mid, mid, 3), (mid, cout, 1)], 1):
            d[p + f'conv{k}.weight'] = arr(co, ci, ks, ks)
            norm(p + f'conv{k}.norm', co)
    for level, c in zip(range(2, 6), [256, 512, 1024, 2048]):
        d[f'backbone.fpn_lateral{level}.weight'] = arr(256, c, 1, 1)
        d[f'backbone.fpn_lateral{level}.bias'] = arr(256)
        d[f'backbone.fpn_output{level}.weight'] = arr(256, 256, 3, 3)
        d[f'backbone.fpn_output{level}.bias'] = arr(256)
    r = 'proposal_generator.rpn_head.'
    d.update({r + 'conv.weight': arr(256, 256, 3, 3), r + 'conv.bias': arr(256),
              r + 'objectness_logits.weight': arr(3, 256, 1, 1), r + 'objectness_logits.bias': arr(3),
              r + 'anchor_deltas.weight': arr(12, 256, 1, 1), r + 'anchor_deltas.bias': arr(12)})
    h = 'roi_heads.'
    d.update({h + 'box_head.fc1.weight': arr(1024, 256 * 49), h + 'box_head.fc1.bias': arr(1024),
              h + 'box_head.fc2.weight': arr(1024, 1024), h + 'box_head.fc2.bias': arr(1024),
              h + 'box_predictor.cls_score.weight': arr(num_classes + 1, 1024),
              h + 'box_predictor.cls_score.bias': arr(num_classes + 1),
              h + 'box_predictor.bbox_pred.weight': arr(4 * num_classes, 1024),
              h + 'box_predictor.bbox_pred.bias': arr(4 * num_classes)})
    for i in range(1, 5):
        d[h + f'mask_head.mask_fcn{i}.weight'] = arr(256, 256, 3, 3)
        d[h + f'mask_head.mask_fcn{i}.bias'] = arr(256)
    d.update({h + 'mask_head.deconv.weight': arr(256, 256, 2, 2), h + 'mask_head.deconv.bias': arr(256),
              h + 'mask_head.predictor.weight': arr(num_classes, 256, 1, 1),
              h + 'mask_head.predictor.bias': arr(num_classes)})
    return d


def caffe2_msra_r50(seed: int = 0) -> Dict[str, np.ndarray]:
    """The blobs of Detectron's ImageNet ``R-50.pkl`` (MSRA ResNet-50, Caffe2 names, BN folded
    into scale ``_s`` and bias ``_b``), with the ``fc1000`` classifier."""
    rng = np.random.default_rng(seed)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    blobs = {'conv1_w': arr(64, 3, 7, 7), 'res_conv1_bn_s': arr(64), 'res_conv1_bn_b': arr(64),
             'fc1000_w': arr(1000, 2048), 'fc1000_b': arr(1000)}
    for stage, j, cin, mid, cout in resnet50_blocks():
        branches = [('1', cin, cout, 1)] if j == 0 else []
        branches += [('2a', cin, mid, 1), ('2b', mid, mid, 3), ('2c', mid, cout, 1)]
        for branch, ci, co, ks in branches:
            name = f'res{stage}_{j}_branch{branch}'
            blobs[name + '_w'] = arr(co, ci, ks, ks)
            blobs[name + '_bn_s'] = arr(co)
            blobs[name + '_bn_b'] = arr(co)
    return blobs


# torchvision ResNet name -> Detectron2 name, as Detectron2's convert-torchvision-to-d2.py
# writes them: stem for what is outside layerN (fc included), resN+1, bnK -> convK.norm
_TO_DETECTRON2 = (
    (r'layer(\d)', lambda m: f'res{int(m[1]) + 1}'),
    (r'bn(\d)', lambda m: f'conv{m[1]}.norm'),
    (r'downsample\.0', lambda m: 'shortcut'),
    (r'downsample\.1', lambda m: 'shortcut.norm'),
)


def detectron2_resnet(state_dict: Dict[str, torch.Tensor], prefix: str = '') -> Dict[str, np.ndarray]:
    """A torchvision ResNet state_dict in Detectron2's naming, keys prefixed by ``prefix``."""
    out = {}
    for key, value in state_dict.items():
        new = key if key.startswith('layer') else 'stem.' + key
        for pattern, repl in _TO_DETECTRON2:
            new = re.sub(pattern, repl, new)
        out[prefix + new] = value.detach().numpy()
    return out


def write_pickle(obj: Any, path: Path) -> Path:
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)
    return path


def _add_blob(layer: Any, array: np.ndarray) -> None:
    blob = layer.blobs.add()
    blob.shape.dim.extend(array.shape)
    blob.data.extend(array.astype(np.float32).ravel().tolist())


def caffe_resnet50(base: int = 8, seed: int = 0) -> Tuple[Any, Dict[str, List[np.ndarray]]]:
    """A Caffe NetParameter with He et al.'s ResNet-50 layer names and random blobs.

    ``base=64`` is the real model; 8 keeps its layout at 1/64 of the size. ``conv1``
    has a bias (folded into BatchNorm by the converter); BatchNorm blobs are the
    statistics times a random scale factor, as Caffe stores them.

    Returns:
        The message and ``{layer name: [arrays]}``.
    """
    rng = np.random.default_rng(seed)
    net = caffe_messages()['NetParameter'](name='ResNet-50')
    blobs: Dict[str, List[np.ndarray]] = {}

    def layer(name, ltype, *arrays):
        msg = net.layer.add(name=name, type=ltype)
        for a in arrays:
            _add_blob(msg, a)
        blobs[name] = list(arrays)

    def conv_bn_scale(conv, suffix, cout, cin, k, bias=False):
        w = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.2
        layer(conv, 'Convolution', w, *([rng.standard_normal(cout).astype(np.float32)] if bias else []))
        factor = np.array([rng.uniform(2, 1000)], np.float32)
        layer(f'bn{suffix}', 'BatchNorm', rng.standard_normal(cout).astype(np.float32) * factor[0],
              rng.uniform(0.5, 2, cout).astype(np.float32) * factor[0], factor)
        layer(f'scale{suffix}', 'Scale', rng.uniform(0.5, 1.5, cout).astype(np.float32),
              rng.standard_normal(cout).astype(np.float32))

    conv_bn_scale('conv1', '_conv1', base, 3, 7, bias=True)
    for stage, j, cin, mid, cout in resnet50_blocks(base):
        block = f'{stage}{"abcdef"[j]}'
        if j == 0:
            conv_bn_scale(f'res{block}_branch1', f'{block}_branch1', cout, cin, 1)
        for branch, (ci, co, k) in zip(('2a', '2b', '2c'), [(cin, mid, 1), (mid, mid, 3), (mid, cout, 1)]):
            conv_bn_scale(f'res{block}_branch{branch}', f'{block}_branch{branch}', co, ci, k)
    layer('fc1000', 'InnerProduct', rng.standard_normal((1000, 32 * base)).astype(np.float32),
          rng.standard_normal(1000).astype(np.float32))
    return net, blobs


def detectron2_cascade_mask_rcnn_r50_fpn(num_classes: int = 80, num_stages: int = 3,
                                         seed: int = 0) -> Dict[str, np.ndarray]:
    """Every parameter of Detectron2's cascade_mask_rcnn_R_50_FPN, in its naming: Mask R-CNN's
    backbone, FPN, RPN and mask head, and per stage t ``roi_heads.box_head.{t}.fc{1,2}`` and
    ``roi_heads.box_predictor.{t}.{cls_score, bbox_pred}`` (class-agnostic: 4 rows)."""
    d = {k: v for k, v in detectron2_mask_rcnn_r50_fpn(num_classes, seed).items()
         if not k.startswith(('roi_heads.box_head.', 'roi_heads.box_predictor.'))}
    rng = np.random.default_rng(seed + 1)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    for t in range(num_stages):
        d.update({f'roi_heads.box_head.{t}.fc1.weight': arr(1024, 256 * 49),
                  f'roi_heads.box_head.{t}.fc1.bias': arr(1024),
                  f'roi_heads.box_head.{t}.fc2.weight': arr(1024, 1024),
                  f'roi_heads.box_head.{t}.fc2.bias': arr(1024),
                  f'roi_heads.box_predictor.{t}.cls_score.weight': arr(num_classes + 1, 1024),
                  f'roi_heads.box_predictor.{t}.cls_score.bias': arr(num_classes + 1),
                  f'roi_heads.box_predictor.{t}.bbox_pred.weight': arr(4, 1024),
                  f'roi_heads.box_predictor.{t}.bbox_pred.bias': arr(4)})
    return d
