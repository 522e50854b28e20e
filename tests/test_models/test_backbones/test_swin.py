"""SwinTransformer: MMDetection's keys, torchvision / official weights, window attention."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.swin_transformer import SwinTransformer as TorchvisionSwin

from mmft.checkpoint import read_checkpoint
from mmft.models.backbones import SwinTransformer
from mmft.models.layers.window_attention import (WindowMSA, relative_position_index,
                                                 shifted_window_mask)
from mmft.registry import MODELS

# MMDetection's configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py backbone
SWIN_T = dict(type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2],
              num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4, qkv_bias=True,
              qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2,
              patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False, convert_weights=True)


def _mmdet_swin_keys(embed=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7):
    """MMDetection 3.3 SwinTransformer's state_dict layout (mmdet/models/backbones/swin.py)."""
    keys = {'patch_embed.projection.weight': (embed, 3, 4, 4),
            'patch_embed.projection.bias': (embed, ),
            'patch_embed.norm.weight': (embed, ), 'patch_embed.norm.bias': (embed, )}
    for i, (depth, head) in enumerate(zip(depths, heads)):
        c = embed * 2**i
        for j in range(depth):
            p = f'stages.{i}.blocks.{j}.'
            keys.update({
                p + 'norm1.weight': (c, ), p + 'norm1.bias': (c, ),
                p + 'attn.w_msa.relative_position_bias_table': ((2 * window - 1)**2, head),
                p + 'attn.w_msa.relative_position_index': (window**2, window**2),
                p + 'attn.w_msa.qkv.weight': (3 * c, c), p + 'attn.w_msa.qkv.bias': (3 * c, ),
                p + 'attn.w_msa.proj.weight': (c, c), p + 'attn.w_msa.proj.bias': (c, ),
                p + 'norm2.weight': (c, ), p + 'norm2.bias': (c, ),
                p + 'ffn.layers.0.0.weight': (4 * c, c), p + 'ffn.layers.0.0.bias': (4 * c, ),
                p + 'ffn.layers.1.weight': (c, 4 * c), p + 'ffn.layers.1.bias': (c, )})
        if i < len(depths) - 1:
            keys.update({f'stages.{i}.downsample.norm.weight': (4 * c, ),
                         f'stages.{i}.downsample.norm.bias': (4 * c, ),
                         f'stages.{i}.downsample.reduction.weight': (2 * c, 4 * c)})
        keys.update({f'norm{i}.weight': (c, ), f'norm{i}.bias': (c, )})
    return keys


@pytest.mark.parametrize('variant', ['t', 'b'])
def test_keys_and_shapes_equal_mmdetection(variant):
    if variant == 't':
        cfg, expected = SWIN_T, _mmdet_swin_keys()
    else:
        cfg = dict(SWIN_T, embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                   window_size=12, pretrain_img_size=384)
        expected = _mmdet_swin_keys(128, (2, 2, 18, 2), (4, 8, 16, 32), 12)
    model = MODELS.build(cfg)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected


def test_relative_position_index_and_shift_mask_by_hand():
    index = relative_position_index(2, 2)
    # positions (0,0), (0,1), (1,0), (1,1); row = (dy + 1) * 3 + dx + 1 for query - key
    assert index.tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    mask = shifted_window_mask(4, 4, window=2, shift=1)
    assert mask.shape == (4, 4, 4)
    assert torch.all(mask[0] == 0)  # the top-left window lies in one region
    # bottom-right window: 4 tokens from 4 different regions, each sees only itself
    assert torch.equal(mask[3] == 0, torch.eye(4, dtype=torch.bool))


def test_window_attention_equals_explicit_softmax():
    torch.manual_seed(0)
    attn = WindowMSA(8, 2, (2, 2))
    torch.nn.init.normal_(attn.relative_position_bias_table, std=1.)
    x = torch.randn(3 * 4, 4, 8)  # 3 images x 4 windows
    mask = shifted_window_mask(4, 4, window=2, shift=1)
    q, k, v = attn.qkv(x).reshape(12, 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
    logits = (q * 4**-0.5) @ k.transpose(-2, -1)
    bias = attn.relative_position_bias_table[relative_position_index(2, 2).view(-1)]
    logits = logits + bias.view(4, 4, 2).permute(2, 0, 1)
    logits = logits.view(3, 4, 2, 4, 4) + mask[None, :, None]
    out = (logits.view(12, 2, 4, 4).softmax(-1) @ v).transpose(1, 2).reshape(12, 4, 8)
    torch.testing.assert_close(attn(x, mask), attn.proj(out))


def _tiny_torchvision_swin(seed=0):
    torch.manual_seed(seed)
    ref = TorchvisionSwin(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 2, 2],
                          num_heads=[1, 2, 2, 4], window_size=[2, 2],
                          stochastic_depth_prob=0.).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.2) if p.dim() > 1 else p.uniform_(-0.5, 0.5)
    return ref


def _torchvision_stage_outputs(ref, x):
    """torchvision's four stage outputs, LayerNorm'd as mmft's output norms at init."""
    f, outs = ref.features, []
    y = f[0](x)
    for stage in (1, 3, 5, 7):
        y = f[stage](f[stage - 1](y) if stage > 1 else y)
        outs.append(F.layer_norm(y, y.shape[-1:]).permute(0, 3, 1, 2))
    return outs


TINY = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=2,
            drop_path_rate=0.)


@pytest.mark.parametrize('size,stages', [((128, 128), 4), ((64, 96), 3), ((60, 92), 3)])
def test_torchvision_weights_give_torchvision_feature_maps(tmp_path, size, stages):
    """Equal where both shift every second block. torchvision skips the shift where the
    padded map is no larger than a window (the last stage at 64x96: 2x3, window 2);
    MMDetection (and mmft) shift there too, so that stage is compared only at 128x128."""
    ref = _tiny_torchvision_swin()
    path = tmp_path / 'swin_tiny_tv.pth'
    torch.save(ref.state_dict(), path)
    model = SwinTransformer(**TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours, theirs = model(x), _torchvision_stage_outputs(ref, x)
    for i in range(stages):
        torch.testing.assert_close(ours[i], theirs[i], atol=1e-5, rtol=1e-4)


def test_torchvision_swin_t_converts_key_for_key():
    source = torchvision.models.swin_t(weights=None).state_dict()
    from mmft.checkpoint.converters import convert_state_dict
    result = convert_state_dict(source, 'torchvision')
    assert sorted(result.unconverted) == ['head.bias', 'head.weight', 'norm.bias', 'norm.weight']
    model = MODELS.build(SWIN_T)
    own = model.state_dict()
    converted = {k[len('backbone.'):]: v for k, v in result.state_dict.items()}
    assert set(converted) == set(own)
    assert all(converted[k].shape == v.shape for k, v in own.items())
    # torchvision computes the same relative position index (flattened)
    assert torch.equal(converted['stages.0.blocks.0.attn.w_msa.relative_position_index'],
                       own['stages.0.blocks.0.attn.w_msa.relative_position_index'])


def _official_from_torchvision(ref):
    """The official Swin release's layout of the same weights (what convert_weights reads)."""
    out = {}
    for key, value in ref.state_dict().items():
        parts = key.split('.')
        if key.startswith('features.0.0.'):
            out['patch_embed.proj.' + parts[-1]] = value
        elif key.startswith('features.0.2.'):
            out['patch_embed.norm.' + parts[-1]] = value
        elif key.startswith('features.') and int(parts[1]) % 2 == 1:
            stage, rest = (int(parts[1]) - 1) // 2, '.'.join(parts[3:])
            rest = rest.replace('mlp.0.', 'mlp.fc1.').replace('mlp.3.', 'mlp.fc2.')
            if rest.endswith('relative_position_index'):
                side = math.isqrt(value.numel())
                value = value.view(side, side)
            out[f'layers.{stage}.blocks.{parts[2]}.{rest}'] = value
        elif key.startswith('features.'):
            out[f'layers.{(int(parts[1]) - 2) // 2}.downsample.' + '.'.join(parts[2:])] = value
        else:
            out[key] = value
    out['layers.0.blocks.1.attn_mask'] = torch.zeros(64, 4, 4)  # a buffer old releases kept
    return out


def test_official_release_through_mmdetections_config_gives_the_same_features(tmp_path):
    ref = _tiny_torchvision_swin(seed=1)
    path = tmp_path / 'swin_tiny_patch4_window2.pth'
    torch.save({'model': _official_from_torchvision(ref)}, path)
    loaded = read_checkpoint(str(path))
    assert loaded.format == 'swin'
    assert 'layers.0.blocks.1.attn_mask' in loaded.unconverted
    model = MODELS.build(dict(SWIN_T, **TINY, init_cfg=dict(type='Pretrained',
                                                           checkpoint=str(path))))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for ours, theirs in zip(model(x), _torchvision_stage_outputs(ref, x)):
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_checkpoint_of_another_size_is_refused(tmp_path):
    path = tmp_path / 'tiny.pth'
    torch.save(_tiny_torchvision_swin().state_dict(), path)
    model = SwinTransformer(**dict(TINY, embed_dims=32),
                            init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='SwinTransformer.*shape mismatch'):
        model.init_weights()


def test_frozen_stages_freeze_embedding_stages_and_their_norms():
    model = SwinTransformer(**TINY, frozen_stages=2, use_abs_pos_embed=True,
                            pretrain_img_size=64).train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.norm0, model.norm1]
    assert not model.absolute_pos_embed.requires_grad
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(not m.training for m in frozen)
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[2].training and model.norm2.training


def test_odd_sizes_abs_pos_embed_and_with_cp():
    torch.manual_seed(0)
    model = SwinTransformer(**TINY, use_abs_pos_embed=True, pretrain_img_size=64,
                            out_indices=(1, 3))
    model.init_weights()
    outs = model.eval()(torch.randn(1, 3, 50, 70))  # patch grid 13x18, not the 16x16 trained
    assert [tuple(o.shape) for o in outs] == [(1, 32, 7, 9), (1, 128, 2, 3)]
    assert not hasattr(model, 'norm0')
    plain = SwinTransformer(**TINY).train()
    cp = SwinTransformer(**TINY, with_cp=True).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    torch.testing.assert_close(plain(x)[-1], cp(x)[-1])
    cp(x)[-1].sum().backward()
    assert cp.stages[0].blocks[0].attn.w_msa.qkv.weight.grad is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match='strides\\[0\\]=2 must equal patch_size=4'):
        SwinTransformer(strides=(2, 2, 2, 2))
    with pytest.raises(ValueError, match='one entry per stage'):
        SwinTransformer(depths=(2, 2, 6), num_heads=(3, 6, 12, 24))
    with pytest.raises(ValueError, match='divisible by num_heads'):
        SwinTransformer(embed_dims=10, num_heads=(3, 6, 12, 24))


def test_load_from_a_torchvision_swin_restores_the_whole_backbone(tmp_path):
    """finetune load_from with a torchvision classifier: classification checkpoint type,
    every backbone tensor restored, neck and heads left to their init."""
    from mmft.finetune import FinetuneConfig, load_pretrained
    ref = _tiny_torchvision_swin()
    path = tmp_path / 'swin_tv.pth'
    torch.save(ref.state_dict(), path)
    detector = MODELS.build(dict(
        type='FasterRCNN',
        backbone=dict(type='SwinTransformer', **TINY),
        neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=16, num_outs=5),
        rpn_head=dict(type='RPNHead', in_channels=16, feat_channels=16,
                      anchor_generator=dict(type='AnchorGenerator', scales=[8],
                                            ratios=[0.5, 1.0, 2.0],
                                            strides=[4, 8, 16, 32, 64]),
                      bbox_coder=dict(type='DeltaXYWHBBoxCoder')),
        roi_head=dict(type='StandardRoIHead',
                      bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                              roi_layer=dict(type='RoIAlign', output_size=7),
                                              out_channels=16, featmap_strides=[4, 8, 16, 32]),
                      bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16,
                                     fc_out_channels=32, num_classes=3)),
        train_cfg=None, test_cfg=None))
    detector.init_weights()
    report = load_pretrained(detector, str(path), FinetuneConfig())
    assert report.checkpoint_type == 'classification'
    assert report.backbone_fraction == 1.0
    torch.testing.assert_close(detector.backbone.stages[1].blocks[1].attn.w_msa.qkv.weight,
                               ref.features[3][1].attn.qkv.weight)


def test_convert_tool_writes_the_official_release_in_mmdetection_keys(tmp_path):
    from tools.model_converters.convert import convert
    src, dst = tmp_path / 'swin_official.pth', tmp_path / 'swin_mmft.pth'
    torch.save({'model': _official_from_torchvision(_tiny_torchvision_swin())}, src)
    meta = convert(str(src), str(dst))
    assert meta['source_format'] == 'swin'
    loaded = read_checkpoint(str(dst))
    model = SwinTransformer(**TINY)
    own = model.state_dict()
    converted = {k[len('backbone.'):]: v for k, v in loaded.state_dict.items()}
    assert set(converted) == set(own)
