"""Caffe -> mmft: .caffemodel files written here with the protobuf runtime."""
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmft.checkpoint.converters import convert_caffe, read_caffemodel
from mmft.checkpoint.converters.caffe import resnet_module_of
from mmft.checkpoint import read_checkpoint
from mmft.models.backbones.resnet import ResNet
from tests.test_checkpoint.test_converters.foreign_checkpoints import caffe_resnet50

BASE = 8  # a ResNet-50 with 8 base channels: the layout of the real one, 1/64 of its size


@pytest.fixture(scope='module')
def caffe_resnet(tmp_path_factory):
    net, blobs = caffe_resnet50(BASE)
    path = tmp_path_factory.mktemp('caffe') / 'ResNet-50-model.caffemodel'
    path.write_bytes(net.SerializeToString())
    return path, blobs


def test_resnet_caffemodel_loads_with_the_right_values(caffe_resnet):
    path, blobs = caffe_resnet
    loaded = read_checkpoint(path)
    assert loaded.format == 'caffe'
    assert loaded.unconverted == ['fc1000']
    model = ResNet(depth=50, stem_channels=BASE, base_channels=BASE, style='caffe').eval()
    state = {k[len('backbone.'):]: v for k, v in loaded.state_dict.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == [] and unexpected == []
    # BatchNorm statistics are divided by the scale factor blob; Scale gives gamma / beta
    mean, var, factor = blobs['bn3b_branch2b']
    assert np.allclose(model.layer2[1].bn2.running_mean.numpy(), mean / factor[0], rtol=1e-6)
    assert np.allclose(model.layer2[1].bn2.running_var.numpy(), var / factor[0], rtol=1e-6)
    gamma, beta = blobs['scale5a_branch1']
    assert np.array_equal(model.layer4[0].downsample[1].weight.detach().numpy(), gamma)
    assert np.array_equal(model.layer4[0].downsample[1].bias.detach().numpy(), beta)
    assert np.array_equal(model.layer3[5].conv3.weight.detach().numpy(), blobs['res4f_branch2c'][0])


def test_stem_matches_caffe_arithmetic_with_folded_conv_bias(caffe_resnet):
    path, blobs = caffe_resnet
    loaded = read_checkpoint(path)
    model = ResNet(depth=50, stem_channels=BASE, base_channels=BASE, style='caffe').eval()
    model.load_state_dict({k[len('backbone.'):]: v for k, v in loaded.state_dict.items()}, strict=False)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    w, bias = (torch.from_numpy(a) for a in blobs['conv1'])
    mean, var, factor = (torch.from_numpy(a) for a in blobs['bn_conv1'])
    gamma, beta = (torch.from_numpy(a) for a in blobs['scale_conv1'])
    c = lambda t: t[None, :, None, None]  # noqa: E731
    # Caffe: Convolution (with bias) -> BatchNorm (stats / factor, eps 1e-5) -> Scale
    conv = F.conv2d(x, w, c(bias)[0, :, 0, 0], stride=2, padding=3)
    expected = c(gamma) * (conv - c(mean / factor)) / torch.sqrt(c(var / factor) + 1e-5) + c(beta)
    with torch.no_grad():
        got = model.norm1(model.conv1(x))
    assert torch.allclose(got, expected, atol=1e-4 * expected.abs().max())


def _varint(n):
    out = b''
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number, wire_type, payload=b''):
    tag = _varint(number << 3 | wire_type)
    return tag + (_varint(len(payload)) + payload if wire_type == 2 else payload)


def test_field_numbers_against_hand_encoded_wire_format():
    """New-format layer (field 100) and old V1 layer (field 2), encoded byte by byte."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    shape = _field(1, 2, _varint(2) + _varint(3))                   # BlobShape.dim, packed
    blob = _field(7, 2, shape) + _field(5, 2, struct.pack('<6f', *w.ravel()))
    layer = _field(1, 2, b'conv1_1') + _field(2, 2, b'Convolution') + _field(7, 2, blob)
    # V1: name = 4, type = 5 (enum INNER_PRODUCT = 14), blobs = 6 with num/channels/height/width
    v1_blob = b''.join(_field(n, 0, _varint(v)) for n, v in ((1, 1), (2, 1), (3, 2), (4, 3)))
    v1_blob += _field(5, 2, struct.pack('<6f', *w.ravel()))
    v1 = _field(4, 2, b'fc7') + _field(5, 0, _varint(14)) + _field(6, 2, v1_blob)
    data = _field(1, 2, b'VGG') + _field(100, 2, layer) + _field(2, 2, v1)
    layers = read_caffemodel(data)
    assert [(l.name, l.type) for l in layers] == [('conv1_1', 'Convolution'), ('fc7', 'InnerProduct')]
    assert np.array_equal(layers[0].blobs[0], w)
    assert layers[1].blobs[0].shape == (1, 1, 2, 3)
    result = convert_caffe(layers)
    assert result.meta['architecture'] == 'vgg16'
    assert result.meta['source_model'] == 'classification'
    assert np.array_equal(result.state_dict['backbone.features.0.weight'].numpy(), w)
    assert result.state_dict['backbone.classifier.3.weight'].shape == (2, 3)


def test_layer_names_of_deep_resnets_and_garbage_input():
    assert resnet_module_of('res4b22_branch2c') == ('conv', 'backbone.layer3.22.conv3')
    assert resnet_module_of('bn3a_branch1') == ('bn', 'backbone.layer2.0.downsample.1')
    assert resnet_module_of('scale2c_branch2a') == ('scale', 'backbone.layer1.2.bn1')
    assert resnet_module_of('pool5') is None
    with pytest.raises(ValueError, match='NetParameter'):
        read_caffemodel(b'\xff\xff\xff\xff not a protobuf')


def test_vgg16_layers_get_torchvision_vgg16_names():
    """VGG-16's blobs get torchvision's VGG-16 names (under ``backbone.``), so the converted
    file loads into ``torchvision.models.vgg16()`` (and into SSDVGG, see
    tests/test_models/test_backbones/test_ssd_yolo_backbones.py)."""
    import torchvision
    from mmft.checkpoint.converters import CaffeLayer
    names = [f'conv{b}_{i}' for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for i in range(1, n + 1)]
    layers = [CaffeLayer(n, 'Convolution', [np.ones((1, 1, 1, 1), np.float32), np.ones(1, np.float32)])
              for n in names]
    layers += [CaffeLayer(n, 'InnerProduct', [np.ones((1, 1, 2, 3), np.float32), np.ones(2, np.float32)])
               for n in ('fc6', 'fc7', 'fc8')]
    layers.append(CaffeLayer('data_bn', 'BatchNorm', [np.ones(1, np.float32)]))  # no place
    result = convert_caffe(layers)
    with torch.device('meta'):  # key names only, no 138M parameters
        reference = torchvision.models.vgg16().state_dict()
    assert set(result.state_dict) == {'backbone.' + k for k in reference}
    assert result.state_dict['backbone.classifier.6.weight'].shape == (2, 3)
    assert result.unconverted == ['data_bn'] and result.meta['architecture'] == 'vgg16'
