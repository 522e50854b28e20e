"""ResNet's dcn / stage_with_dcn and plugins (ContextBlock): MMDetection's keys and configs."""
import pytest
import torch

from mmft.models.backbones import ResNet, ResNeXt
from mmft.models.layers import ContextBlock, DeformConv2dPack, ModulatedDeformConv2dPack
from mmft.registry import MODELS

# MMDetection configs/dcn/*, configs/dcnv2/*, configs/gcnet/* (backbone parts)
DCN_C3_C5 = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
DCNV2_C3_C5 = dict(type='DCNv2', deform_groups=1, fallback_on_stride=False)
GC_R16 = [dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
               stages=(False, True, True, True), position='after_conv3')]


def test_dcn_c3_c5_keys_and_shapes_follow_mmdetection():
    model = ResNet(depth=50, dcn=DCNV2_C3_C5, stage_with_dcn=(False, True, True, True))
    sd = model.state_dict()
    plain = ResNet(depth=50).state_dict()
    # MMDetection (mmcv ModulatedDeformConv2dPack, bias=False): conv2.weight keeps its shape,
    # conv2.conv_offset.{weight,bias} are added (27 = 3 * 3 * 3 channels), nothing else
    extra = {k: tuple(v.shape) for k, v in sd.items() if k not in plain}
    expected = {}
    for stage, (blocks, width) in enumerate(zip((4, 6, 3), (128, 256, 512))):
        for j in range(blocks):
            expected[f'layer{stage + 2}.{j}.conv2.conv_offset.weight'] = (27, width, 3, 3)
            expected[f'layer{stage + 2}.{j}.conv2.conv_offset.bias'] = (27, )
    assert extra == expected
    assert all(sd[k].shape == v.shape for k, v in plain.items())
    assert isinstance(model.layer3[0].conv2, ModulatedDeformConv2dPack)
    assert type(model.layer1[0].conv2) is torch.nn.Conv2d


def test_dcn_v1_fallback_on_stride_keeps_the_strided_conv_plain():
    model = ResNet(depth=50, dcn=dict(DCN_C3_C5, fallback_on_stride=True),
                   stage_with_dcn=(False, True, True, True))
    assert type(model.layer2[0].conv2) is torch.nn.Conv2d  # stride 2
    assert isinstance(model.layer2[1].conv2, DeformConv2dPack)


def test_dcn_starts_as_the_plain_resnet_and_trains():
    torch.manual_seed(0)
    dcn = ResNet(depth=50, base_channels=16, dcn=DCN_C3_C5,
                 stage_with_dcn=(False, True, True, True), norm_eval=False,
                 zero_init_residual=False)  # zero bn3 would block conv2's gradient
    dcn.init_weights()
    plain = ResNet(depth=50, base_channels=16, norm_eval=False)
    plain.load_state_dict({k: v for k, v in dcn.state_dict().items() if 'conv_offset' not in k})
    x = torch.randn(1, 3, 64, 64)
    dcn.eval(), plain.eval()
    with torch.no_grad():
        for a, b in zip(dcn(x), plain(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    dcn.train()
    dcn(x)[-1].mean().backward()
    assert dcn.layer3[0].conv2.weight.grad.abs().sum() > 0


def test_gcnet_plugins_keys_stages_and_identity_init():
    model = MODELS.build(dict(type='ResNet', depth=50, base_channels=16, plugins=GC_R16,
                              norm_eval=False))
    model.init_weights()
    sd = model.state_dict()
    assert not any('context_block' in k for k in sd if k.startswith('layer1.'))
    # 16 base channels: stage 2 outputs 128 channels, ratio 1/16 -> 8
    assert tuple(sd['layer2.0.context_block.channel_add_conv.0.weight'].shape) == (8, 128, 1, 1)
    assert tuple(sd['layer4.2.context_block.conv_mask.weight'].shape) == (1, 512, 1, 1)
    assert isinstance(model.layer3[5].context_block, ContextBlock)
    blocks = sum(1 for k in sd if k.endswith('context_block.conv_mask.weight'))
    assert blocks == 4 + 6 + 3
    # zero-initialised last conv: the plugin starts as the identity
    assert torch.all(model.layer2[0].context_block.channel_add_conv[3].weight == 0)


def test_plugins_with_postfix_and_positions_on_resnext():
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=0.25, postfix=1), position='after_conv2'),
               dict(cfg=dict(type='ContextBlock', ratio=0.25, postfix=2), position='after_conv3')]
    model = ResNeXt(depth=50, groups=4, base_width=4, base_channels=16, plugins=plugins)
    block = model.layer1[0]
    assert block.plugin_names == {'after_conv1': [], 'after_conv2': ['context_block1'],
                                  'after_conv3': ['context_block2']}
    assert block.context_block1.in_channels == block.conv2.out_channels
    assert model.eval()(torch.randn(1, 3, 32, 32))[-1].shape == (1, 512, 1, 1)


def test_bad_dcn_and_plugin_arguments():
    with pytest.raises(NotImplementedError, match='BasicBlock'):
        ResNet(depth=18, dcn=DCN_C3_C5, stage_with_dcn=(False, True, True, True))
    with pytest.raises(ValueError, match='stage_with_dcn'):
        ResNet(depth=50, dcn=DCN_C3_C5, stage_with_dcn=(False, True))
    with pytest.raises(ValueError, match='position'):
        ResNet(depth=50, plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25),
                                       position='after_conv4')])
    with pytest.raises(ValueError, match='different .postfix'):
        ResNet(depth=50, plugins=[dict(cfg=dict(type='ContextBlock', ratio=0.25),
                                       position='after_conv3')] * 2)


def test_torchvision_imagenet_weights_init_a_dcn_gcnet_resnet(tmp_path):
    """MMDetection's dcn / gcnet configs start from torchvision://resnet50: the offset convs
    and context blocks the file lacks keep their init, everything else loads exactly."""
    import torchvision
    ref = torchvision.models.resnet50(weights=None)
    path = tmp_path / 'r50.pth'
    torch.save(ref.state_dict(), path)
    model = ResNet(depth=50, dcn=DCN_C3_C5, stage_with_dcn=(False, True, True, True),
                   plugins=GC_R16, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    torch.testing.assert_close(model.layer3[2].conv2.weight, ref.layer3[2].conv2.weight)
    assert torch.all(model.layer3[2].conv2.conv_offset.weight == 0)
    assert torch.all(model.layer4[0].context_block.channel_add_conv[3].weight == 0)
    x = torch.randn(1, 3, 64, 64)
    model.eval(), ref.eval()
    with torch.no_grad():  # zero offsets, identity context blocks: the plain ResNet-50
        expected = ref.layer4(ref.layer3(ref.layer2(ref.layer1(
            ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
        torch.testing.assert_close(model(x)[-1], expected, atol=1e-4, rtol=1e-4)
    # a plain ResNet still refuses a file that lacks its own tensors
    torch.save({k: v for k, v in ref.state_dict().items() if not k.startswith('layer4.2.')},
               path)
    with pytest.raises(ValueError, match='not in the file'):
        ResNet(depth=50, init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
