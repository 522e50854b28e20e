"""SSDVGG, MobileNetV2, Darknet: MMDetection's keys and output shapes, and torchvision's
VGG-16 / MobileNetV2 ImageNet weights giving torchvision's features."""
import pytest
import torch
import torchvision

from mmft.models.backbones import SSDVGG, Darknet, MobileNetV2

# MMDetection's SSDVGG(depth=16) state_dict: features index -> (out, in, kernel)
SSDVGG16_CONVS = {0: (64, 3, 3), 2: (64, 64, 3), 5: (128, 64, 3), 7: (128, 128, 3),
                  10: (256, 128, 3), 12: (256, 256, 3), 14: (256, 256, 3), 17: (512, 256, 3),
                  19: (512, 512, 3), 21: (512, 512, 3), 24: (512, 512, 3), 26: (512, 512, 3),
                  28: (512, 512, 3), 31: (1024, 512, 3), 33: (1024, 1024, 1)}


def _save(tmp_path, state_dict, name):
    path = tmp_path / name
    torch.save(state_dict, path)
    return str(path)


def test_ssdvgg_keys_and_outputs():
    model = SSDVGG(depth=16)
    expected = {}
    for i, (out_c, in_c, k) in SSDVGG16_CONVS.items():
        expected[f'features.{i}.weight'] = (out_c, in_c, k, k)
        expected[f'features.{i}.bias'] = (out_c,)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected
    assert model.features[31].dilation == (6, 6) and model.features[31].padding == (6, 6)
    outs = model(torch.rand(1, 3, 75, 75))
    # ceil-mode pools: 75 -> 38 -> 19 -> 10 at conv4_3 (22), then 5 at fc7 (34)
    assert [tuple(o.shape) for o in outs] == [(1, 512, 10, 10), (1, 1024, 5, 5)]
    with pytest.raises(KeyError, match='depth must be one of'):
        SSDVGG(depth=18)
    with pytest.raises(ValueError, match='out_feature_indices'):
        SSDVGG(depth=16, out_feature_indices=(40,))


@pytest.fixture(scope='module')
def tv_vgg16():
    torch.manual_seed(0)
    return torchvision.models.vgg16().eval()


def test_torchvision_vgg16_loads_into_ssdvgg_with_decimated_fc(tmp_path, tv_vgg16):
    path = _save(tmp_path, tv_vgg16.state_dict(), 'vgg16.pth')
    model = SSDVGG(depth=16, out_feature_indices=(22, 34),
                   init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        conv4_3, fc7 = model(x)
        torch.testing.assert_close(conv4_3, tv_vgg16.features[:23](x))
    sd, tv = model.state_dict(), tv_vgg16.state_dict()
    fc6 = tv['classifier.0.weight'].view(4096, 512, 7, 7)
    assert torch.equal(sd['features.31.weight'], fc6[::4, :, ::3, ::3])
    assert torch.equal(sd['features.33.weight'][:, :, 0, 0], tv['classifier.3.weight'][::4, ::4])
    assert torch.equal(sd['features.31.bias'], tv['classifier.0.bias'][::4])
    assert fc7.shape == (1, 1024, 4, 4)


def test_caffe_vgg16_loads_into_ssdvgg(tmp_path, tv_vgg16):
    """Caffe VGG-16 blobs (fc weights stored (1, 1, out, in)) convert to torchvision's
    names under ``backbone.`` and then load into SSDVGG, fc6/fc7 decimated. (Parsing the
    .caffemodel bytes is tested with the Caffe converter; a 138M-parameter file is not
    written here.)"""
    from mmft.checkpoint.converters import CaffeLayer, convert_caffe
    tv = tv_vgg16.state_dict()
    names = [f'conv{b}_{i}' for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for i in range(1, n + 1)]
    index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    layers = [CaffeLayer(n, 'Convolution', [tv[f'features.{i}.weight'].numpy(),
                                            tv[f'features.{i}.bias'].numpy()])
              for n, i in zip(names, index)]
    layers += [CaffeLayer(n, 'InnerProduct', [tv[f'classifier.{i}.weight'].numpy()[None, None],
                                              tv[f'classifier.{i}.bias'].numpy()])
               for n, i in (('fc6', 0), ('fc7', 3), ('fc8', 6))]
    converted = convert_caffe(layers).state_dict
    model = SSDVGG(depth=16, init_cfg=dict(type='Pretrained',
                                           checkpoint=_save(tmp_path, converted, 'caffe.pth')))
    model.init_weights()
    sd = model.state_dict()
    for i in index:
        assert torch.equal(sd[f'features.{i}.weight'], tv[f'features.{i}.weight'])
    fc6 = tv['classifier.0.weight'].view(4096, 512, 7, 7)
    assert torch.equal(sd['features.31.weight'], fc6[::4, :, ::3, ::3])
    assert torch.equal(sd['features.33.bias'], tv['classifier.3.bias'][::4])


def test_mobilenet_v2_keys_and_torchvision_weights(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2().eval()
    for m in tv.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    model = MobileNetV2(out_indices=(1, 2, 4, 7),
                        init_cfg=dict(type='Pretrained',
                                      checkpoint=_save(tmp_path, tv.state_dict(), 'mbv2.pth')))
    model.init_weights()
    model.eval()
    sd = model.state_dict()
    # MMDetection's names: stem, expand-ratio-1 block, a full block, the last conv
    assert tuple(sd['conv1.conv.weight'].shape) == (32, 3, 3, 3)
    assert 'layer1.0.expand_conv.conv.weight' not in sd
    assert tuple(sd['layer1.0.depthwise_conv.conv.weight'].shape) == (32, 1, 3, 3)
    assert tuple(sd['layer2.0.expand_conv.conv.weight'].shape) == (96, 16, 1, 1)
    assert tuple(sd['layer7.0.linear_conv.bn.running_var'].shape) == (320,)
    assert tuple(sd['conv2.conv.weight'].shape) == (1280, 320, 1, 1)
    assert len(sd) == len(tv.state_dict()) - 2  # all but the classifier
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        outs = model(x)
        torch.testing.assert_close(outs[-1], tv.features(x))
        torch.testing.assert_close(outs[2], tv.features[:14](x))  # layer5 (96 ch, stride 16)
    assert [o.shape[1] for o in outs] == [24, 32, 96, 1280]


def test_darknet53_keys_and_outputs():
    model = Darknet(depth=53, out_indices=(3, 4, 5))
    sd = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == 40584928
    assert tuple(sd['conv1.conv.weight'].shape) == (32, 3, 3, 3)
    assert tuple(sd['conv_res_block1.conv.conv.weight'].shape) == (64, 32, 3, 3)
    assert tuple(sd['conv_res_block5.res3.conv2.bn.weight'].shape) == (1024,)
    assert tuple(sd['conv_res_block3.res7.conv1.conv.weight'].shape) == (128, 256, 1, 1)
    assert 'conv_res_block5.res4.conv1.conv.weight' not in sd
    outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 256, 8, 8), (1, 512, 4, 4), (1, 1024, 2, 2)]
    model.train()
    assert not model.conv1.bn.training  # norm_eval=True by default
