import hashlib
import numpy as np
import pytest
import torch
import torchvision
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.models.backbones import ResNet
from mmft.checkpoint.remote import RemoteCheckpointError
from mmft.registry import MODELS


def test_resnet50_state_dict_matches_torchvision():
    ours = ResNet(depth=50).state_dict()
    ref = {k: v for k, v in torchvision.models.resnet50(weights=None).state_dict().items()
           if not k.startswith('fc.')}
    assert set(ours) == set(ref)
    for key, value in ref.items():
        assert ours[key].shape == value.shape, key


@pytest.mark.parametrize('depth,channels', [(18, (64, 128, 256, 512)), (34, (64, 128, 256, 512)),
                                            (50, (256, 512, 1024, 2048))])
def test_output_shapes(depth, channels):
    model = ResNet(depth=depth).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_out_indices_and_caffe_style_stride_position():
    model = MODELS.build(dict(type='ResNet', depth=50, out_indices=(1, 3), style='caffe'))
    assert model.layer2[0].conv1.stride == (2, 2) and model.layer2[0].conv2.stride == (1, 1)
    pytorch = ResNet(depth=50)
    assert pytorch.layer2[0].conv1.stride == (1, 1) and pytorch.layer2[0].conv2.stride == (2, 2)
    outs = model.eval()(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 512, 8, 8), (1, 2048, 2, 2)]


def test_frozen_stages_and_norm_eval():
    model = ResNet(depth=18, frozen_stages=1, norm_eval=False)
    model.train()
    frozen = [model.conv1, model.bn1, model.layer1]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert model.layer2.training and model.layer2[0].bn1.training

    model = ResNet(depth=18, frozen_stages=-1, norm_eval=True).train()
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert model.layer4[0].conv1.training
    assert all(p.requires_grad for p in model.parameters())


def test_norm_requires_grad_false_and_gn_names():
    model = ResNet(depth=18, norm_cfg=dict(type='BN', requires_grad=False))
    assert not model.bn1.weight.requires_grad and model.conv1.weight.requires_grad
    gn = ResNet(depth=18, norm_cfg=dict(type='GN', num_groups=32))
    assert 'gn1.weight' in gn.state_dict() and 'layer1.0.gn2.weight' in gn.state_dict()


@pytest.mark.parametrize('depth', [18, 50])
def test_pretrained_init_cfg_loads_torchvision_weights(tmp_path, depth):
    ref = getattr(torchvision.models, f'resnet{depth}')(weights=None)
    path = tmp_path / f'r{depth}.pth'
    torch.save(ref.state_dict(), path)
    model = ResNet(depth=depth, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    model.load_pretrained(str(path))  # only fc.* is left over
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, ref.state_dict()[key])
    x = torch.randn(1, 3, 64, 64)
    ref.eval(), model.eval()
    with torch.no_grad():
        expected = ref.layer4(ref.layer3(ref.layer2(ref.layer1(
            ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
        torch.testing.assert_close(model(x)[-1], expected)


def test_pretrained_from_the_hub_cache_loads_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    ref = torchvision.models.resnet18(weights=None)
    hub = tmp_path / 'hub' / 'checkpoints'
    hub.mkdir(parents=True)
    plain = hub / 'r18.pth'
    torch.save(ref.state_dict(), plain)
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    plain.rename(hub / f'resnet18-{digest[:8]}.pth')
    # cached: no network is touched (the port is closed)
    url = f'http://127.0.0.1:9/models/resnet18-{digest[:8]}.pth'
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=url))
    model.init_weights()
    torch.testing.assert_close(model.conv1.weight, ref.conv1.weight)


def test_pretrained_that_cannot_be_fetched_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = 'http://127.0.0.1:9/models/resnet18-f37072fd.pth'
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(RemoteCheckpointError, match='put it at .*resnet18-f37072fd.pth'):
        model.init_weights()


def test_pretrained_of_another_depth_stops_the_run(tmp_path):
    path = tmp_path / 'r34.pth'
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='ResNet-18 init_cfg .*does not fit'):
        model.init_weights()


def test_missing_local_checkpoint_is_an_error():
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint='/no/such/r18.pth'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        model.init_weights()


def test_with_cp_gives_same_output_and_grads():
    torch.manual_seed(0)
    plain = ResNet(depth=18, norm_eval=True).train()
    cp = ResNet(depth=18, with_cp=True, norm_eval=True).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    out_plain, out_cp = plain(x)[-1], cp(x)[-1]
    torch.testing.assert_close(out_plain, out_cp)
    out_plain.sum().backward()
    out_cp.sum().backward()
    torch.testing.assert_close(plain.conv1.weight.grad, cp.conv1.weight.grad)


def test_default_init_zero_inits_residual_norms():
    model = ResNet(depth=50)
    model.init_weights()
    assert torch.all(model.layer1[0].bn3.weight == 0)
    assert torch.all(model.layer1[0].bn1.weight == 1)


def test_invalid_arguments():
    with pytest.raises(KeyError, match='depth'):
        ResNet(depth=42)
    with pytest.raises(NotImplementedError, match='deep_stem'):
        ResNet(depth=18, deep_stem=True)
    with pytest.raises(ValueError, match='style'):
        ResNet(depth=50, style='tf')


# ----------------------------------------------------- init_cfg from foreign checkpoints
def _random_torchvision_resnet18(seed: int = 0) -> torch.nn.Module:
    """torchvision resnet18, random weights and BatchNorm statistics (so swaps show)."""
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _assert_same_features(model: ResNet, ref: torch.nn.Module) -> None:
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref.layer4(ref.layer3(ref.layer2(ref.layer1(
            ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
        torch.testing.assert_close(model.eval()(x)[-1], expected)


def test_init_cfg_reads_a_converted_torchvision_checkpoint(tmp_path):
    from tools.model_converters.convert import convert
    ref = _random_torchvision_resnet18()
    torch.save(ref.state_dict(), tmp_path / 'resnet18.pth')
    convert(str(tmp_path / 'resnet18.pth'), str(tmp_path / 'r18_mmft.pth'))
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained',
                                           checkpoint=str(tmp_path / 'r18_mmft.pth')))
    model.init_weights()
    _assert_same_features(model, ref)
    # 'backbone.' is taken off by itself; an explicit prefix does the same
    model.load_pretrained(str(tmp_path / 'r18_mmft.pth'), prefix='backbone')


@pytest.mark.parametrize('prefix', ['', 'backbone.bottom_up.'],
                         ids=['imagenet_pkl', 'detector_pkl'])
def test_init_cfg_reads_a_detectron2_pkl(tmp_path, prefix):
    """Detectron2's naming of a torchvision backbone (its convert-torchvision-to-d2.py output),
    alone or inside a detector's ``backbone.bottom_up.``."""
    from tests.test_checkpoint.test_converters.foreign_checkpoints import (detectron2_resnet,
                                                                         write_pickle)
    ref = _random_torchvision_resnet18(seed=1)
    weights = detectron2_resnet(ref.state_dict(), prefix)
    assert 'stem.conv1.norm.running_var' in {k[len(prefix):] for k in weights}
    if prefix:  # a detector: parts other than the backbone are left alone
        weights['proposal_generator.rpn_head.conv.weight'] = np.zeros((4, 4, 3, 3), np.float32)
    path = write_pickle({'model': weights, '__author__': 'torchvision'}, tmp_path / 'r18.pkl')
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_same_features(model, ref)
    model.load_pretrained(str(path))


def test_init_cfg_reads_a_caffemodel(tmp_path, monkeypatch):
    from mmengine.logging import MMLogger
    from tests.test_checkpoint.test_converters.foreign_checkpoints import caffe_resnet50
    net, blobs = caffe_resnet50(base=8)
    path = tmp_path / 'ResNet-50-model.caffemodel'
    path.write_bytes(net.SerializeToString())
    cfg = dict(depth=50, stem_channels=8, base_channels=8,
               init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model = ResNet(style='caffe', **cfg)
    model.init_weights()
    model.load_pretrained(str(path))  # fc1000 has no place: not unexpected
    mean, var, factor = blobs['bn4c_branch2a']
    torch.testing.assert_close(model.layer3[2].bn1.running_mean, torch.from_numpy(mean / factor))
    torch.testing.assert_close(model.layer3[2].bn1.running_var, torch.from_numpy(var / factor))
    gamma, beta = blobs['scale2a_branch1']
    assert torch.equal(model.layer1[0].downsample[1].weight, torch.from_numpy(gamma))
    assert torch.equal(model.layer1[0].downsample[1].bias, torch.from_numpy(beta))
    assert torch.equal(model.layer4[2].conv2.weight, torch.from_numpy(blobs['res5c_branch2b'][0]))

    warnings = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'warning', warnings.append)
    ResNet(style='pytorch', **cfg).init_weights()
    assert len(warnings) == 1 and "style='caffe'" in warnings[0]


def test_init_cfg_that_does_not_fit_is_an_error(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / 'r18.pth')
    model = ResNet(depth=50, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'r18.pth')))
    with pytest.raises(ValueError, match='does not fit.*depth'):
        model.init_weights()
    torch.save({'features.0.weight': torch.zeros(1)}, tmp_path / 'vgg.pth')
    with pytest.raises(ValueError, match='120 model tensor.s. not in the file'):
        ResNet(depth=18).load_pretrained(str(tmp_path / 'vgg.pth'))
