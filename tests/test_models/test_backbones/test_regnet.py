"""RegNet: MMDetection's arch table and keys; torchvision regnet_x_* weights and features."""
import pytest
import torch
import torchvision
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.models.backbones import RegNet
from mmft.models.backbones.regnet import regnet_stages
from mmft.registry import MODELS


def test_stage_widths_of_mmdetection_archs():
    # MMDetection's docstring / model zoo: regnetx_3.2gf -> 96, 192, 432, 1008 channels
    assert regnet_stages(88, 26.31, 2.25, 25, 48) == ([96, 192, 432, 1008], [2, 6, 15, 2],
                                                      [48, 48, 48, 48])
    model = MODELS.build(dict(type='RegNet', arch='regnetx_3.2gf', out_indices=(0, 1, 2, 3),
                              frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True),
                              norm_eval=True, style='pytorch'))
    outs = model.eval()(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 96, 8, 8), (1, 192, 4, 4), (1, 432, 2, 2),
                                              (1, 1008, 1, 1)]
    assert model.layer3[0].conv2.groups == 432 // 48
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (2, 2)
    explicit = RegNet(arch=dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0))
    assert {k: v.shape for k, v in explicit.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize('arch,name', [('regnetx_800mf', 'regnet_x_800mf'),
                                       ('regnetx_1.6gf', 'regnet_x_1_6gf'),
                                       ('regnetx_3.2gf', 'regnet_x_3_2gf'),
                                       ('regnetx_8.0gf', 'regnet_x_8gf')])
def test_torchvision_checkpoints_convert_key_for_key(tmp_path, arch, name):
    ref = getattr(torchvision.models, name)(weights=None)
    path = tmp_path / f'{name}.pth'
    torch.save(ref.state_dict(), path)
    model = RegNet(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()  # exact: every tensor of the model comes from the file
    torch.testing.assert_close(model.layer2[1].conv2.weight,
                               ref.trunk_output.block2[1].f.b[0].weight)


def test_torchvision_400mf_differs_from_mmdetections_and_is_refused(tmp_path):
    # the last stage's 392 rounds to a multiple of 16 as 384 in MMDetection (round half to
    # even) and as 400 in torchvision (round half up): not the same network
    path = tmp_path / 'regnet_x_400mf.pth'
    torch.save(torchvision.models.regnet_x_400mf(weights=None).state_dict(), path)
    model = RegNet(arch='regnetx_400mf', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r'RegNet\(regnetx_400mf\) init_cfg .*\(400, 160, 1, 1\)'):
        model.init_weights()


def test_torchvision_weights_give_torchvision_feature_maps(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.regnet_x_800mf(weights=None)
    for m in ref.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    path = tmp_path / 'regnet_x_800mf.pth'
    torch.save(ref.state_dict(), path)
    model = RegNet(arch='regnetx_800mf', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    model.eval(), ref.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = ref.stem(x)
        expected = []
        for block in ref.trunk_output:
            y = block(y)
            expected.append(y)
        for ours, theirs in zip(model(x), expected):
            torch.testing.assert_close(ours, theirs)


def test_frozen_stages_norm_eval_and_bad_arch():
    model = RegNet(arch='regnetx_400mf', frozen_stages=1, norm_eval=True).train()
    assert not any(p.requires_grad for m in (model.conv1, model.bn1, model.layer1)
                   for p in m.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    with pytest.raises(KeyError, match="'regnetx_5gf' is unknown"):
        RegNet(arch='regnetx_5gf')
    with pytest.raises(KeyError, match="lacks \\['group_w'\\]"):
        RegNet(arch=dict(w0=88, wa=26.31, wm=2.25, depth=25))
