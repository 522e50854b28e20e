"""Swin's (shifted) window self-attention with relative position bias.

Names follow MMDetection's ``ShiftWindowMSA`` / ``WindowMSA``: ``w_msa.qkv``,
``w_msa.proj``, ``w_msa.relative_position_bias_table`` (``(2Wh-1)(2Ww-1), heads``) and the
buffer ``w_msa.relative_position_index`` (``Wh*Ww, Wh*Ww``), which indexes the table by
the offset between two positions of a window: ``(dy + Wh - 1) * (2Ww - 1) + dx + Ww - 1``.

Attention runs on ``torch.nn.functional.scaled_dot_product_attention`` with the bias (and
the shifted-window mask) as a float ``attn_mask``, so fused kernels run where available.
Tokens are ``(B, H*W, C)`` row-major; windows are ``(B * nW, Wh*Ww, C)``, window-major in
row-major window order. The shifted variant rolls the map by ``-shift`` before
partitioning and masks pairs of tokens that came from different regions (-100, as Swin).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .transformer import DropPath


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(B, H, W, C)`` -> ``(B * nW, window, window, C)`` (H, W multiples of window)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`window_partition`: -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(wh: int, ww: int) -> Tensor:
    """``(Wh*Ww, Wh*Ww)`` long: the bias-table row of each (query, key) pair."""
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww),
                                        indexing='ij')).flatten(1)  # 2, N
    rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N: query minus key
    return (rel[0] + wh - 1) * (2 * ww - 1) + rel[1] + ww - 1


def shifted_window_mask(h: int, w: int, window: int, shift: int,
                        device: Optional[torch.device] = None) -> Tensor:
    """``(nW, N, N)`` additive mask: 0 within a region, -100 across regions."""
    regions = torch.zeros(1, h, w, 1, device=device)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            regions[:, hs, ws, :] = label
            label += 1
    labels = window_partition(regions, window).reshape(-1, window * window)
    mask = labels[:, None, :] - labels[:, :, None]
    return mask.masked_fill(mask != 0, -100.).masked_fill(mask == 0, 0.)


class WindowMSA(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: Tuple[int, int],
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'WindowMSA embed_dims {embed_dims} must be divisible by '
                             f'num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = tuple(window_size)
        self.scale = qk_scale or (embed_dims // num_heads)**-0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        self.register_buffer('relative_position_index', relative_position_index(wh, ww))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop_rate
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def init_weights(self) -> None:
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> Tensor:
        """``(heads, N, N)`` bias of every (query, key) pair of a window."""
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``x``: ``(B * nW, N, C)``; ``mask``: ``(nW, N, N)`` additive, or None."""
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B*nW, heads, N, d
        bias = self.position_bias().unsqueeze(0).to(q.dtype)  # 1, heads, N, N
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias + mask.to(q.dtype).unsqueeze(1)).unsqueeze(0)  # 1, nW, heads, N, N
            bias = bias.expand(bw // nw, -1, -1, -1, -1).reshape(bw, self.num_heads, n, n)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.attn_drop if self.training else 0.,
            scale=self.scale)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))


class ShiftWindowMSA(nn.Module):
    """Window attention on a token map, optionally on windows shifted by ``shift_size``."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.,
                 drop_path_rate: float = 0.) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f'ShiftWindowMSA shift_size {shift_size} must be in '
                             f'[0, window_size={window_size})')
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, (window_size, window_size), qkv_bias,
                               qk_scale, attn_drop_rate, proj_drop_rate)
        self.drop = DropPath(drop_path_rate)

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        b, length, c = x.shape
        h, w = hw
        if length != h * w:
            raise ValueError(f'ShiftWindowMSA: {length} tokens do not form a {h}x{w} map')
        win, shift = self.window_size, self.shift_size
        x = x.reshape(b, h, w, c)
        x = F.pad(x, (0, 0, 0, (win - w % win) % win, 0, (win - h % win) % win))
        hp, wp = x.shape[1:3]
        mask = None
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(hp, wp, win, shift, device=x.device)
        windows = window_partition(x, win).reshape(-1, win * win, c)
        x = window_reverse(self.w_msa(windows, mask).reshape(-1, win, win, c), win, hp, wp)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        x = x[:, :h, :w, :].reshape(b, h * w, c)
        return self.drop(x)
