"""ResNeXt: torchvision's keys, shapes and feature maps; MMDetection's arguments."""
import pytest
import torch
import torchvision
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.checkpoint import read_checkpoint
from mmft.models.backbones import ResNeXt
from mmft.registry import MODELS

VARIANTS = [(50, 32, 4, 'resnext50_32x4d'), (101, 32, 8, 'resnext101_32x8d'),
            (101, 64, 4, 'resnext101_64x4d')]


@pytest.mark.parametrize('depth,groups,width,name', VARIANTS)
def test_keys_and_shapes_equal_torchvision(depth, groups, width, name):
    ours = ResNeXt(depth=depth, groups=groups, base_width=width).state_dict()
    ref = {k: v for k, v in getattr(torchvision.models, name)(weights=None).state_dict().items()
           if not k.startswith('fc.')}
    assert set(ours) == set(ref)
    assert all(ours[k].shape == v.shape for k, v in ref.items())


def test_mmdetection_32x4d_widths_and_groups():
    model = MODELS.build(dict(type='ResNeXt', depth=101, groups=32, base_width=4,
                              num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                              norm_cfg=dict(type='BN', requires_grad=True), style='pytorch'))
    # MMDetection: width = floor(planes * 4 / 64) * 32 -> 128, 256, 512, 1024
    for i, width in enumerate((128, 256, 512, 1024)):
        conv2 = getattr(model, f'layer{i + 1}')[0].conv2
        assert (conv2.in_channels, conv2.out_channels, conv2.groups) == (width, width, 32)
    assert len(model.layer3) == 23
    assert model.model_name == 'ResNeXt-101-32x4d'


def _torchvision_features(ref, x):
    x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
    outs = []
    for layer in (ref.layer1, ref.layer2, ref.layer3, ref.layer4):
        x = layer(x)
        outs.append(x)
    return outs


def test_torchvision_checkpoint_gives_torchvision_feature_maps(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.resnext50_32x4d(weights=None)
    for m in ref.modules():  # non-trivial BN statistics
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    path = tmp_path / 'resnext50_32x4d.pth'
    torch.save(ref.state_dict(), path)
    loaded = read_checkpoint(str(path))
    assert loaded.meta.get('source_model') == 'classification'
    model = ResNeXt(depth=50, groups=32, base_width=4,
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    model.eval(), ref.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(model(x), _torchvision_features(ref, x)):
            torch.testing.assert_close(ours, theirs)


def test_checkpoint_of_other_cardinality_is_refused(tmp_path):
    path = tmp_path / 'x101_32x8d.pth'
    torch.save(torchvision.models.resnext101_32x8d(weights=None).state_dict(), path)
    model = ResNeXt(depth=101, groups=32, base_width=4,
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='ResNeXt-101-32x4d init_cfg .*shape mismatch'):
        model.init_weights()


def test_frozen_stages_norm_eval_and_bad_arguments():
    model = ResNeXt(depth=50, groups=32, base_width=4, frozen_stages=2, norm_eval=True).train()
    assert not any(p.requires_grad for m in (model.conv1, model.layer1, model.layer2)
                   for p in m.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    with pytest.raises(KeyError, match='depth'):
        ResNeXt(depth=18, groups=32)
    with pytest.raises(ValueError, match='groups=0'):
        ResNeXt(depth=50, groups=0)
