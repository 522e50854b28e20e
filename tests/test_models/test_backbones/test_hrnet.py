"""HRNet: MMDetection's key layout (W18), outputs, freezing; pretrained load."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.models.backbones import HRNet
from mmft.registry import MODELS

W18 = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(4, ),
                num_channels=(64, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4),
                num_channels=(18, 36)),
    stage3=dict(num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4),
                num_channels=(18, 36, 72)),
    stage4=dict(num_modules=3, num_branches=4, block='BASIC', num_blocks=(4, 4, 4, 4),
                num_channels=(18, 36, 72, 144)))


def _bn(keys, prefix, c):
    keys.update({f'{prefix}.{n}': (c, ) for n in ('weight', 'bias', 'running_mean',
                                                   'running_var')})
    keys[f'{prefix}.num_batches_tracked'] = ()


def _mmdet_hrnet_w18_keys():
    """MMDetection 3.3 HRNet's layout (mmdet/models/backbones/hrnet.py) for HRNetV2p-W18."""
    keys = {'conv1.weight': (64, 3, 3, 3), 'conv2.weight': (64, 64, 3, 3)}
    _bn(keys, 'bn1', 64)
    _bn(keys, 'bn2', 64)
    for j in range(4):  # layer1: Bottlenecks 64 -> 256
        cin = 64 if j == 0 else 256
        p = f'layer1.{j}'
        keys.update({f'{p}.conv1.weight': (64, cin, 1, 1), f'{p}.conv2.weight': (64, 64, 3, 3),
                     f'{p}.conv3.weight': (256, 64, 1, 1)})
        for n, c in (('bn1', 64), ('bn2', 64), ('bn3', 256)):
            _bn(keys, f'{p}.{n}', c)
    keys['layer1.0.downsample.0.weight'] = (256, 64, 1, 1)
    _bn(keys, 'layer1.0.downsample.1', 256)
    # transitions: stage 2 from 256 channels; later ones add one branch from the last
    keys['transition1.0.0.weight'] = (18, 256, 3, 3)
    _bn(keys, 'transition1.0.1', 18)
    keys['transition1.1.0.0.weight'] = (36, 256, 3, 3)
    _bn(keys, 'transition1.1.0.1', 36)
    keys['transition2.2.0.0.weight'] = (72, 36, 3, 3)
    _bn(keys, 'transition2.2.0.1', 72)
    keys['transition3.3.0.0.weight'] = (144, 72, 3, 3)
    _bn(keys, 'transition3.3.0.1', 144)
    chans = (18, 36, 72, 144)
    for stage, modules, branches in ((2, 1, 2), (3, 4, 3), (4, 3, 4)):
        for m in range(modules):
            p = f'stage{stage}.{m}'
            for b in range(branches):
                for j in range(4):
                    c = chans[b]
                    keys[f'{p}.branches.{b}.{j}.conv1.weight'] = (c, c, 3, 3)
                    keys[f'{p}.branches.{b}.{j}.conv2.weight'] = (c, c, 3, 3)
                    _bn(keys, f'{p}.branches.{b}.{j}.bn1', c)
                    _bn(keys, f'{p}.branches.{b}.{j}.bn2', c)
            for i in range(branches):
                for j in range(branches):
                    f = f'{p}.fuse_layers.{i}.{j}'
                    if j > i:
                        keys[f'{f}.0.weight'] = (chans[i], chans[j], 1, 1)
                        _bn(keys, f'{f}.1', chans[i])
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = chans[i] if last else chans[j]
                        keys[f'{f}.{k}.0.weight'] = (cout, chans[j], 3, 3)
                        _bn(keys, f'{f}.{k}.1', cout)
    return keys


def test_w18_keys_and_shapes_equal_mmdetection():
    model = MODELS.build(dict(type='HRNet', extra=W18))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == _mmdet_hrnet_w18_keys()


def test_outputs_and_multiscale_output_false():
    model = HRNet(W18).eval()
    outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 18, 16, 24), (1, 36, 8, 12), (1, 72, 4, 6),
                                              (1, 144, 2, 3)]
    single = HRNet(W18, multiscale_output=False).eval()
    assert [tuple(o.shape) for o in single(torch.randn(1, 3, 64, 64))] == [(1, 18, 16, 16)]
    assert len(single.stage4[-1].fuse_layers) == 1 and len(single.stage4[0].fuse_layers) == 4


def test_fusion_adds_resized_branches():
    """stage2's first output = relu(branch 0 + upsample(bn(conv1x1(branch 1))))."""
    torch.manual_seed(0)
    module = HRNet(W18).stage2[0].eval()
    x = [torch.randn(1, 18, 8, 8), torch.randn(1, 36, 4, 4)]
    with torch.no_grad():
        b0, b1 = module.branches[0](x[0]), module.branches[1](x[1])
        conv, bn = module.fuse_layers[0][1][0], module.fuse_layers[0][1][1]
        expected = torch.relu(b0 + bn(conv(b1)).repeat_interleave(2, 2).repeat_interleave(2, 3))
        torch.testing.assert_close(module(x)[0], expected)


def test_frozen_stages_norm_eval_and_pretrained(tmp_path):
    model = HRNet(W18, frozen_stages=2, norm_eval=False).train()
    for module in (model.conv1, model.bn2, model.layer1, model.transition1, model.stage2):
        assert not any(p.requires_grad for p in module.parameters())
        assert not module.training
    assert all(p.requires_grad for p in model.stage3.parameters()) and model.stage3.training
    model = HRNet(W18).train()  # norm_eval=True by default
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    # an MMDetection detector checkpoint's backbone.* loads exactly
    source = HRNet(W18)
    source.init_weights()
    path = tmp_path / 'hrnet_det.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()},
                'meta': {}}, path)
    loaded = HRNet(W18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    loaded.init_weights()
    torch.testing.assert_close(loaded.stage4[2].fuse_layers[3][0][2][0].weight,
                               source.stage4[2].fuse_layers[3][0][2][0].weight)


def test_bad_extra():
    with pytest.raises(KeyError, match='stage4 is missing'):
        HRNet({k: v for k, v in W18.items() if k != 'stage4'})
    with pytest.raises(KeyError, match="'RES'"):
        HRNet(dict(W18, stage2=dict(W18['stage2'], block='RES')))
    with pytest.raises(ValueError, match='num_branches=2'):
        HRNet(dict(W18, stage2=dict(W18['stage2'], num_channels=(18, ))))
