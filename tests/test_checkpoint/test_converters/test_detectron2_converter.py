"""Detectron2 -> mmft: a Detectron2-layout dict built here loads with every key used."""
import os
import pickle

import numpy as np
import pytest
import torch

from mmft.checkpoint.converters import COCO_CLASSES, convert_detectron2, load_detectron2_pkl
from mmft.checkpoint.converters.detectron2 import BN_EPS
from mmft.checkpoint import UnsafeCheckpointError, read_checkpoint
from mmft.models.backbones.resnet import ResNet
from mmft.models.necks.fpn import FPN
from tests.test_checkpoint.test_converters.foreign_checkpoints import (
    caffe2_msra_r50, detectron2_resnet, write_pickle)

RNG = np.random.default_rng(0)


def _arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# MMDetection 3.x names of the heads of Mask R-CNN R50-FPN
HEAD_KEYS = {f'rpn_head.{m}.{p}' for m in ('rpn_conv', 'rpn_cls', 'rpn_reg') for p in ('weight', 'bias')} | \
    {f'roi_head.bbox_head.{m}.{p}' for m in ('shared_fcs.0', 'shared_fcs.1', 'fc_cls', 'fc_reg')
     for p in ('weight', 'bias')} | \
    {f'roi_head.mask_head.{m}.{p}' for m in ('convs.0.conv', 'convs.1.conv', 'convs.2.conv',
                                            'convs.3.conv', 'upsample', 'conv_logits')
     for p in ('weight', 'bias')}


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
    path = write_pickle({'model': d2_weights, '__author__': 'test'}, tmp_path / 'model_final.pkl')
    loaded = read_checkpoint(path)
    assert loaded.format == 'detectron2' and loaded.unconverted == []
    assert loaded.meta['source_model'] == 'detection' and loaded.meta['style'] == 'caffe'
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
    blobs = caffe2_msra_r50()
    loaded = read_checkpoint(write_pickle({'blobs': blobs}, tmp_path / 'R-50.pkl'))
    assert sorted(loaded.unconverted) == ['fc1000_b', 'fc1000_w']
    assert loaded.meta['source_model'] == 'classification' and loaded.meta['style'] == 'caffe'
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


def test_torchvision_backbone_in_detectron2_naming():
    """What Detectron2's convert-torchvision-to-d2.py writes: stem.*, resN.*, convK.norm,
    BatchNorm counters as 0-d arrays, and the classifier as stem.fc."""
    import torchvision
    source = torchvision.models.resnet18(weights=None).state_dict()
    weights = detectron2_resnet(source)
    assert weights['stem.conv1.norm.num_batches_tracked'].shape == ()
    result = convert_detectron2({'model': weights, '__author__': 'torchvision',
                                 'matching_heuristics': True})
    assert sorted(result.unconverted) == ['stem.fc.bias', 'stem.fc.weight']
    assert set(result.state_dict) == {'backbone.' + k for k in source if not k.startswith('fc.')}
    assert result.state_dict['backbone.layer3.0.bn2.num_batches_tracked'].shape == ()
    assert torch.equal(result.state_dict['backbone.layer3.0.downsample.1.running_var'],
                       source['layer3.0.downsample.1.running_var'])
    # torchvision's conventions, not MSRA's
    assert result.meta['style'] == 'pytorch' and result.meta['author'] == 'torchvision'
    assert result.meta['source_model'] == 'classification' and result.meta['classes'] is None
