"""Detectron2 -> mmft: a Detectron2-layout dict built here loads with every key used."""
import os
import pickle

import numpy as np
import pytest
import torch

from mmft.finetune.converters import COCO_CLASSES, convert_detectron2, load_detectron2_pkl
from mmft.finetune.converters.detectron2 import BN_EPS
from mmft.finetune.io import UnsafeCheckpointError, read_checkpoint
from mmft.models.backbones.resnet import ResNet
from mmft.models.necks.fpn import FPN

RNG = np.random.default_rng(0)


def _arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _resnet50_blocks():
    """(stage 2..5, block index, in/mid/out channels) of ResNet-50."""
    inplanes = 64
    for stage, (blocks, planes) in zip(range(2, 6), [(3, 64), (4, 128), (6, 256), (3, 512)]):
        for j in range(blocks):
            yield stage, j, inplanes, planes, planes * 4
            inplanes = planes * 4


def detectron2_r50_fpn_mask_rcnn(num_classes=80):
    """Every parameter of Detectron2's mask_rcnn_R_50_FPN, in its naming, as numpy arrays."""
    d = {}

    def norm(prefix, c):
        d[prefix + '.weight'] = RNG.uniform(0.5, 1.5, c).astype(np.float32)
        d[prefix + '.bias'] = _arr(c)
        d[prefix + '.running_mean'] = _arr(c)
        d[prefix + '.running_var'] = RNG.uniform(0.5, 1.5, c).astype(np.float32)

    b = 'backbone.bottom_up.'
    d[b + 'stem.conv1.weight'] = _arr(64, 3, 7, 7)
    norm(b + 'stem.conv1.norm', 64)
    for stage, j, cin, mid, cout in _resnet50_blocks():
        p = f'{b}res{stage}.{j}.'
        if j == 0:
            d[p + 'shortcut.weight'] = _arr(cout, cin, 1, 1)
            norm(p + 'shortcut.norm', cout)
        for k, (ci, co, ks) in enumerate([(cin, mid, 1), (mid, mid, 3), (mid, cout, 1)], 1):
            d[p + f'conv{k}.weight'] = _arr(co, ci, ks, ks)
            norm(p + f'conv{k}.norm', co)
    for level, c in zip(range(2, 6), [256, 512, 1024, 2048]):
        d[f'backbone.fpn_lateral{level}.weight'] = _arr(256, c, 1, 1)
        d[f'backbone.fpn_lateral{level}.bias'] = _arr(256)
        d[f'backbone.fpn_output{level}.weight'] = _arr(256, 256, 3, 3)
        d[f'backbone.fpn_output{level}.bias'] = _arr(256)
    r = 'proposal_generator.rpn_head.'
    d.update({r + 'conv.weight': _arr(256, 256, 3, 3), r + 'conv.bias': _arr(256),
              r + 'objectness_logits.weight': _arr(3, 256, 1, 1), r + 'objectness_logits.bias': _arr(3),
              r + 'anchor_deltas.weight': _arr(12, 256, 1, 1), r + 'anchor_deltas.bias': _arr(12)})
    h = 'roi_heads.'
    d.update({h + 'box_head.fc1.weight': _arr(1024, 256 * 49), h + 'box_head.fc1.bias': _arr(1024),
              h + 'box_head.fc2.weight': _arr(1024, 1024), h + 'box_head.fc2.bias': _arr(1024),
              h + 'box_predictor.cls_score.weight': _arr(num_classes + 1, 1024),
              h + 'box_predictor.cls_score.bias': _arr(num_classes + 1),
              h + 'box_predictor.bbox_pred.weight': _arr(4 * num_classes, 1024),
              h + 'box_predictor.bbox_pred.bias': _arr(4 * num_classes)})
    for i in range(1, 5):
        d[h + f'mask_head.mask_fcn{i}.weight'] = _arr(256, 256, 3, 3)
        d[h + f'mask_head.mask_fcn{i}.bias'] = _arr(256)
    d.update({h + 'mask_head.deconv.weight': _arr(256, 256, 2, 2), h + 'mask_head.deconv.bias': _arr(256),
              h + 'mask_head.predictor.weight': _arr(num_classes, 256, 1, 1),
              h + 'mask_head.predictor.bias': _arr(num_classes)})
    return d


# MMDetection 3.x names of the heads of Mask R-CNN R50-FPN
HEAD_KEYS = {f'rpn_head.{m}.{p}' for m in ('rpn_conv', 'rpn_cls', 'rpn_reg') for p in ('weight', 'bias')} | \
    {f'roi_head.bbox_head.{m}.{p}' for m in ('shared_fcs.0', 'shared_fcs.1', 'fc_cls', 'fc_reg')
     for p in ('weight', 'bias')} | \
    {f'roi_head.mask_head.{m}.{p}' for m in ('convs.0.conv', 'convs.1.conv', 'convs.2.conv',
                                            'convs.3.conv', 'upsample', 'conv_logits')
     for p in ('weight', 'bias')}


@pytest.fixture(scope='module')
def d2_weights():
    return detectron2_r50_fpn_mask_rcnn()


def test_every_key_converts_to_the_mmdetection_layout(d2_weights):
    result = convert_detectron2({'model': d2_weights, '__author__': 'test', 'matching_heuristics': True})
    assert result.unconverted == []
    counters = [k for k in result.state_dict if k.endswith('num_batches_tracked')]
    assert len(result.state_dict) - len(counters) == len(d2_weights)
    backbone_keys = {'backbone.' + k for k in ResNet(depth=50).state_dict()}
    neck_keys = {'neck.' + k for k in FPN([256, 512, 1024, 2048], 256, 5).state_dict()}
    assert set(result.state_dict) == backbone_keys | neck_keys | HEAD_KEYS
    assert result.meta['source_format'] == 'detectron2'
    assert result.meta['classes'] == COCO_CLASSES


def test_values_land_in_the_right_place_and_class_order_is_kept(d2_weights):
    sd = convert_detectron2(d2_weights).state_dict
    pairs = {
        'backbone.conv1.weight': 'backbone.bottom_up.stem.conv1.weight',
        'backbone.bn1.running_var': 'backbone.bottom_up.stem.conv1.norm.running_var',
        'backbone.layer2.1.bn2.running_mean': 'backbone.bottom_up.res3.1.conv2.norm.running_mean',
        'backbone.layer4.0.downsample.0.weight': 'backbone.bottom_up.res5.0.shortcut.weight',
        'backbone.layer4.0.downsample.1.bias': 'backbone.bottom_up.res5.0.shortcut.norm.bias',
        'neck.lateral_convs.0.conv.weight': 'backbone.fpn_lateral2.weight',
        'neck.fpn_convs.3.conv.bias': 'backbone.fpn_output5.bias',
        'rpn_head.rpn_cls.weight': 'proposal_generator.rpn_head.objectness_logits.weight',
        'roi_head.bbox_head.shared_fcs.1.weight': 'roi_heads.box_head.fc2.weight',
        'roi_head.mask_head.convs.3.conv.weight': 'roi_heads.mask_head.mask_fcn4.weight',
        'roi_head.mask_head.upsample.bias': 'roi_heads.mask_head.deconv.bias',
    }
    for mmft_key, d2_key in pairs.items():
        assert np.array_equal(sd[mmft_key].numpy(), d2_weights[d2_key]), mmft_key
    # Detectron2 already has background last and 4 box rows per class: rows unchanged
    cls = d2_weights['roi_heads.box_predictor.cls_score.weight']
    assert np.array_equal(sd['roi_head.bbox_head.fc_cls.weight'].numpy(), cls)
    assert np.array_equal(sd['roi_head.bbox_head.fc_cls.weight'][80].numpy(), cls[80])
    assert np.array_equal(sd['roi_head.mask_head.conv_logits.weight'].numpy(),
                          d2_weights['roi_heads.mask_head.predictor.weight'])


def test_pkl_file_is_detected_and_loads_into_caffe_style_resnet(d2_weights, tmp_path):
    path = tmp_path / 'model_final.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'model': d2_weights, '__author__': 'test'}, f, protocol=2)
    loaded = read_checkpoint(path)
    assert loaded.format == 'detectron2' and loaded.unconverted == []
    assert loaded.meta['dataset_meta']['classes'] == COCO_CLASSES
    backbone = ResNet(depth=50, style='caffe', norm_cfg=dict(type='BN', requires_grad=False),
                      norm_eval=True)
    state = {k[len('backbone.'):]: v for k, v in loaded.state_dict.items() if k.startswith('backbone.')}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    assert missing == [] and unexpected == []
    # caffe style: the stride of layer2's first block is on its 1x1 conv1
    assert backbone.layer2[0].conv1.stride == (2, 2)


def test_caffe2_blob_names_of_msra_r50(tmp_path):
    model = ResNet(depth=50, style='caffe')
    blobs = {'conv1_w': _arr(64, 3, 7, 7), 'res_conv1_bn_s': _arr(64), 'res_conv1_bn_b': _arr(64),
             'fc1000_w': _arr(1000, 2048), 'fc1000_b': _arr(1000)}
    for stage, j, cin, mid, cout in _resnet50_blocks():
        if j == 0:
            blobs[f'res{stage}_{j}_branch1_w'] = _arr(cout, cin, 1, 1)
            blobs[f'res{stage}_{j}_branch1_bn_s'] = _arr(cout)
            blobs[f'res{stage}_{j}_branch1_bn_b'] = _arr(cout)
        for letter, (ci, co, ks) in zip('abc', [(cin, mid, 1), (mid, mid, 3), (mid, cout, 1)]):
            blobs[f'res{stage}_{j}_branch2{letter}_w'] = _arr(co, ci, ks, ks)
            blobs[f'res{stage}_{j}_branch2{letter}_bn_s'] = _arr(co)
            blobs[f'res{stage}_{j}_branch2{letter}_bn_b'] = _arr(co)
    path = tmp_path / 'R-50.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'blobs': blobs}, f)
    loaded = read_checkpoint(path)
    assert sorted(loaded.unconverted) == ['fc1000_b', 'fc1000_w']
    state = {k[len('backbone.'):]: v for k, v in loaded.state_dict.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == [] and unexpected == []
    # folded BN: the norm computes exactly s * x + b
    bn = model.layer3[2].bn2.eval()
    x = torch.randn(2, 256, 3, 3)
    s = torch.from_numpy(blobs['res4_2_branch2b_bn_s'])[None, :, None, None]
    b = torch.from_numpy(blobs['res4_2_branch2b_bn_b'])[None, :, None, None]
    with torch.no_grad():
        assert torch.allclose(bn(x), s * x + b, atol=1e-5)
    assert torch.allclose(model.bn1.running_var, torch.full((64,), 1 - BN_EPS))


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_pkl_with_code_is_refused_before_running(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'model': {'w': np.zeros(2)}, 'x': _RunsShell(marker)}, f)
    with pytest.raises(UnsafeCheckpointError, match='refused'):
        read_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        load_detectron2_pkl(path)
    assert not marker.exists()


def test_non_coco_head_gets_no_class_names():
    d = {'roi_heads.box_predictor.cls_score.weight': _arr(4, 8),
         'roi_heads.box_predictor.cls_score.bias': _arr(4)}
    result = convert_detectron2(d)
    assert result.meta['classes'] is None and result.unconverted == []


def test_detectron2_pth_is_detected_from_its_keys(tmp_path):
    """Detectron2's own trainer saves ``{'model': {name: tensor}}`` with torch.save."""
    weights = {'backbone.bottom_up.stem.conv1.weight': torch.ones(2, 3, 7, 7),
               'proposal_generator.rpn_head.conv.bias': torch.arange(4.)}
    torch.save({'model': weights}, tmp_path / 'model_0004999.pth')
    for fmt in ('auto', 'detectron2'):
        loaded = read_checkpoint(tmp_path / 'model_0004999.pth', source_format=fmt)
        assert loaded.format == 'detectron2'
        assert loaded.state_dict['rpn_head.rpn_conv.bias'].tolist() == [0., 1., 2., 3.]
    # 'mmft' turns conversion off
    assert read_checkpoint(tmp_path / 'model_0004999.pth', source_format='mmft').format == 'model'
