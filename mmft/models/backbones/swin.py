"""Swin Transformer backbone with MMDetection 3.x's ``SwinTransformer`` arguments and keys.

State-dict keys: ``patch_embed.{projection,norm}``, ``[absolute_pos_embed]``,
``stages.{i}.blocks.{j}.{norm1, attn.w_msa.{qkv, proj, relative_position_bias_table,
relative_position_index}, norm2, ffn.layers.{0.0, 1}}``,
``stages.{i}.downsample.{norm, reduction}`` for ``i < num_stages - 1``, and ``norm{i}``
for each ``i`` in ``out_indices``. Stage ``i`` has ``embed_dims * 2**i`` channels and stride
``patch_size * 2**i``; its output is taken before the patch merging and normalised by
``norm{i}``, as MMDetection does.

Odd-numbered blocks of a stage attend in windows shifted by ``window_size // 2``; maps are
padded on the bottom / right to a multiple of the window (and of the patch size), so any
input size works. Pretrained weights (``init_cfg``) can be an MMDetection checkpoint, the
official Swin release (``convert_weights=True`` in MMDetection's configs) or torchvision's
``swin_t/s/b``; all are converted by :mod:`mmft.checkpoint` before the exact load. The
output norms do not exist in classifiers: converters add them at LayerNorm's init (1, 0),
which is what MMDetection's non-strict load leaves them at.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor

from mmft.checkpoint.pretrained import load_pretrained_init, pretrained_cfgs
from mmft.registry import MODELS
from ..layers import build_norm_layer
from ..layers.transformer import FFN, PatchEmbed, PatchMerging
from ..layers.window_attention import ShiftWindowMSA, WindowMSA


class SwinBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + ffn(norm2(x))``."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 window_size: int = 7, shift: bool = False, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 act_cfg: Dict = dict(type='GELU'), norm_cfg: Dict = dict(type='LN'),
                 with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size,
                                   window_size // 2 if shift else 0, qkv_bias, qk_scale,
                                   attn_drop_rate, drop_rate, drop_path_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, feedforward_channels, drop_rate, drop_path_rate, act_cfg)

    def _inner_forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        x = x + self.attn(self.norm1(x), hw)
        return self.ffn(self.norm2(x), identity=x)

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, hw, use_reentrant=False)
        return self._inner_forward(x, hw)


class SwinBlockSequence(nn.Module):
    """One stage: ``depth`` blocks (every second one shifted), then optional merging."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, depth: int,
                 drop_path_rates: Sequence[float], downsample: Optional[nn.Module] = None,
                 **block_kwargs) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinBlock(embed_dims, num_heads, feedforward_channels, shift=i % 2 == 1,
                      drop_path_rate=drop_path_rates[i], **block_kwargs)
            for i in range(depth)])
        self.downsample = downsample

    def forward(self, x: Tensor, hw: Tuple[int, int]
                ) -> Tuple[Tensor, Tuple[int, int], Tensor, Tuple[int, int]]:
        """Returns ``(next stage input, its size, this stage's output, its size)``."""
        for block in self.blocks:
            x = block(x, hw)
        if self.downsample is None:
            return x, hw, x, hw
        down, down_hw = self.downsample(x, hw)
        return down, down_hw, x, hw


@MODELS.register_module()
class SwinTransformer(BaseModule):
    """Swin Transformer (Liu et al. 2021), MMDetection 3.x's arguments.

    Swin-T: ``embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)``; Swin-S:
    depths ``(2, 2, 18, 2)``; Swin-B: ``embed_dims=128, num_heads=(4, 8, 16, 32)``,
    depths ``(2, 2, 18, 2)``, ``window_size=7`` (or 12 at 384 px).

    Args:
        pretrain_img_size: image size of the pretraining, sizes ``absolute_pos_embed``.
        patch_size, strides: the patch embedding stride (== ``strides[0]``) and each
            later stage's merging stride.
        window_size: attention window side.
        mlp_ratio: FFN width / embed_dims.
        out_indices: stages whose (normalised) outputs are returned.
        drop_path_rate: stochastic depth, rising linearly over all blocks to this value.
        use_abs_pos_embed: add a learned absolute position embedding to the patches.
        convert_weights: MMDetection's flag for the official checkpoints; mmft
            recognises and converts those (and torchvision's) whatever its value.
        frozen_stages: -1 trains all; ``k >= 0`` freezes the patch embedding (and
            absolute position embedding) and stages ``1..k`` with their output norms.
        with_cp: gradient checkpointing in the blocks.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)``, else truncated-normal
            linears (std 0.02) and unit LayerNorms as MMDetection.
    """

    def __init__(self,
                 pretrain_img_size: Union[int, Tuple[int, int]] = 224,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 patch_size: int = 4,
                 window_size: int = 7,
                 mlp_ratio: int = 4,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 strides: Sequence[int] = (4, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 patch_norm: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 use_abs_pos_embed: bool = False,
                 act_cfg: Dict = dict(type='GELU'),
                 norm_cfg: Dict = dict(type='LN'),
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 convert_weights: bool = False,
                 frozen_stages: int = -1,
                 init_cfg: Optional[Union[Dict, Sequence[Dict]]] = None) -> None:
        num_stages = len(depths)
        if len(num_heads) != num_stages or len(strides) != num_stages:
            raise ValueError(f'SwinTransformer depths {tuple(depths)}, num_heads '
                             f'{tuple(num_heads)} and strides {tuple(strides)} need one entry '
                             'per stage')
        if strides[0] != patch_size:
            raise ValueError(f'SwinTransformer strides[0]={strides[0]} must equal '
                             f'patch_size={patch_size} (non-overlapping patch embedding)')
        if not out_indices or max(out_indices) >= num_stages:
            raise ValueError(f'SwinTransformer out_indices {tuple(out_indices)} must be '
                             f'non-empty and < {num_stages}')
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('SwinTransformer: set either init_cfg or the deprecated '
                                 'pretrained, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg)
        if isinstance(pretrain_img_size, int):
            pretrain_img_size = (pretrain_img_size, pretrain_img_size)
        self.out_indices = tuple(out_indices)
        self.use_abs_pos_embed = use_abs_pos_embed
        self.convert_weights = convert_weights
        self.frozen_stages = frozen_stages
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size,
                                      norm_cfg if patch_norm else None)
        self.pos_grid = (pretrain_img_size[0] // patch_size, pretrain_img_size[1] // patch_size)
        if use_abs_pos_embed:
            self.absolute_pos_embed = nn.Parameter(
                torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], embed_dims))
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        channels = embed_dims
        for i, depth in enumerate(depths):
            downsample = None
            if i < num_stages - 1:
                downsample = PatchMerging(channels, 2 * channels, strides[i + 1],
                                          norm_cfg if patch_norm else None)
            self.stages.append(SwinBlockSequence(
                channels, num_heads[i], mlp_ratio * channels, depth,
                rates[sum(depths[:i]):sum(depths[:i + 1])], downsample,
                window_size=window_size, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, act_cfg=act_cfg,
                norm_cfg=norm_cfg, with_cp=with_cp))
            if downsample is not None:
                channels = downsample.out_channels
        self.num_features = [int(embed_dims * 2**i) for i in range(num_stages)]
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.num_features[i])[1])
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        frozen = []
        if self.frozen_stages >= 0:
            frozen += [self.patch_embed, self.drop_after_pos]
            if self.use_abs_pos_embed:
                self.absolute_pos_embed.requires_grad = False
        for i in range(self.frozen_stages):
            frozen.append(self.stages[i])
            if i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'SwinTransformer':
        """Switch mode, keeping frozen stages in eval."""
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Truncated-normal init (as MMDetection), then the ``Pretrained`` checkpoint."""
        if self.use_abs_pos_embed:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, WindowMSA):
                m.init_weights()
        for cfg in pretrained_cfgs(self.init_cfg):
            load_pretrained_init(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                                 name=self.model_name)
        self._is_init = True

    @property
    def model_name(self) -> str:
        depths = [len(s.blocks) for s in self.stages]
        return f'SwinTransformer(embed_dims={self.num_features[0]}, depths={depths})'

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x, hw = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self._abs_pos_embed(hw)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw, out, out_hw = stage(x, hw)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.reshape(-1, *out_hw, self.num_features[i])
                            .permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def _abs_pos_embed(self, hw: Tuple[int, int]) -> Tensor:
        """The embedding, resized (bicubic) when the patch grid differs from pretraining's."""
        if tuple(hw) == self.pos_grid:
            return self.absolute_pos_embed
        grid = self.absolute_pos_embed.transpose(1, 2).reshape(1, -1, *self.pos_grid)
        grid = nn.functional.interpolate(grid, size=hw, mode='bicubic', align_corners=False)
        return grid.flatten(2).transpose(1, 2)
