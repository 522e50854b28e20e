"""``roi_align``: torchvision's op with a faster backward on CPU.

The forward is torchvision's kernel. On CPU its backward is a serial loop that recomputes
every sample's bilinear weights once per channel; here the weights are computed once per
RoI and the gradient is the sparse product ``S @ grad``, where ``S`` (``B*H*W`` rows,
``K*ph*pw`` columns) holds each bin's bilinear weights divided by its sample count. The
entries of a row keep torchvision's loop order, so every pixel's sum is taken in the same
order: the gradient equals torchvision's to float rounding (bit-identical on some CPUs when
the sample count is a power of two; the sparse kernel's vector width decides). CUDA, half precision and sampling
grids too dense to hold as a matrix use torchvision's backward.

torchvision's CPU forward is serial too: with several torch threads the RoIs are split
among that many Python threads (the op releases the GIL); every RoI is pooled alone, so
the output is the same.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torchvision.ops import roi_align as tv_roi_align

# entries of S above which torchvision's backward is used (memory ~20 bytes an entry)
_MAX_ENTRIES = 2**25
# elements of the gradient computed per sparse product (64 MB): bounds the extra memory
_BLOCK_ELEMENTS = 2**24
# RoIs per thread below which splitting the forward costs more than it saves
_MIN_ROIS_PER_THREAD = 32
_POOLS: Dict[int, ThreadPoolExecutor] = {}
# a forked child inherits the pools but not their threads: it makes its own
os.register_at_fork(after_in_child=_POOLS.clear)


def _forward(feats: Tensor, rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
             sampling_ratio: int, aligned: bool) -> Tensor:
    """torchvision's forward kernel, over RoI chunks in parallel on a multi-threaded CPU."""
    args = (float(spatial_scale), output_size[0], output_size[1], sampling_ratio, aligned)
    threads = min(torch.get_num_threads(), rois.size(0) // _MIN_ROIS_PER_THREAD)
    if feats.device.type != 'cpu' or threads < 2:
        return torch.ops.torchvision.roi_align(feats, rois, *args)
    pool = _POOLS.setdefault(threads, ThreadPoolExecutor(threads, 'mmft-roi-align'))
    feats = feats.contiguous()  # else every chunk would make its own contiguous copy
    return torch.cat(list(pool.map(lambda r: torch.ops.torchvision.roi_align(feats, r, *args),
                                   rois.chunk(threads))))


def _axis_weights(start: Tensor, bin_size: Tensor, grid: Tensor, pooled: int, size: int,
                  max_grid: int) -> Tuple[Tensor, Tensor]:
    """Low/high pixel indices and weights ``(K, pooled, max_grid, 2)`` of the samples along
    one axis, computed as torchvision's ``bilinear_interpolate_gradient`` does (samples
    beyond ``grid`` or outside ``[-1, size]`` weigh 0)."""
    p = torch.arange(pooled, dtype=start.dtype, device=start.device)
    i = torch.arange(max_grid, dtype=start.dtype, device=start.device)
    grid = grid.to(start.dtype)[:, None, None]
    # an empty grid (a zero-size RoI) has no samples; 1 keeps its unused ones finite
    coord = (start[:, None, None] + p[None, :, None] * bin_size[:, None, None]) + \
        (i[None, None, :] + 0.5) * bin_size[:, None, None] / grid.clamp(min=1)
    valid = (i[None, None, :] < grid) & (coord >= -1) & (coord <= size)
    coord = torch.where(valid, coord.clamp(min=0), 0)
    low = coord.floor()
    last = low >= size - 1  # clamped to the last pixel, which then takes the whole weight
    low = torch.where(last, torch.full_like(low, size - 1), low)
    coord = torch.where(last, low, coord)
    high = torch.where(last, low, low + 1)
    frac = coord - low
    zero = frac.new_zeros(())
    return (torch.stack([low, high], -1).long(),
            torch.stack([torch.where(valid, 1 - frac, zero), torch.where(valid, frac, zero)],
                        -1))


def roi_align_backward(grad: Tensor, rois: Tensor, spatial_scale: float,
                       output_size: Tuple[int, int], sampling_ratio: int, aligned: bool,
                       input_shape: Tuple[int, int, int, int]) -> Tensor:
    """Gradient ``(B, C, H, W)`` of the features from ``grad`` ``(K, C, ph, pw)``."""
    b, c, h, w = input_shape
    ph, pw = output_size
    k = rois.size(0)
    box = rois[:, 1:] * spatial_scale - (0.5 if aligned else 0.)
    x1, y1 = box[:, 0], box[:, 1]
    roi_w, roi_h = box[:, 2] - x1, box[:, 3] - y1
    if not aligned:  # torchvision forces malformed RoIs to 1x1
        roi_w, roi_h = roi_w.clamp(min=1.), roi_h.clamp(min=1.)
    bin_h, bin_w = roi_h / ph, roi_w / pw
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full((k,), sampling_ratio, device=rois.device)
    else:
        grid_h, grid_w = torch.ceil(bin_h).long(), torch.ceil(bin_w).long()
    max_h, max_w = max(int(grid_h.max()), 1), max(int(grid_w.max()), 1)
    count = (grid_h * grid_w).clamp(min=1).to(grad.dtype)
    ys, wy = _axis_weights(y1, bin_h, grid_h, ph, h, max_h)  # (K, ph, gy, 2)
    xs, wx = _axis_weights(x1, bin_w, grid_w, pw, w, max_w)  # (K, pw, gx, 2)
    wy = wy / count[:, None, None, None]
    # entries in torchvision's loop order: RoI, bin row, bin column, sample row, sample
    # column, corner (y then x)
    image = rois[:, 0].long()[:, None, None, None, None, None, None]
    pixel = (image * h + ys[:, :, None, :, None, :, None]) * w + xs[:, None, :, None, :, None, :]
    weight = wy[:, :, None, :, None, :, None] * wx[:, None, :, None, :, None, :]
    per_bin = max_h * max_w * 4
    weight = weight.reshape(-1)
    # entries of weight 0 add nothing to any sum: samples beyond a RoI's own grid (an
    # adaptive grid takes the densest RoI's size), outside the map (torchvision skips
    # both) and corners a sample sits exactly on. The sort, the costliest step, skips them.
    entries = (weight != 0).nonzero().squeeze(1)
    # stable: each pixel's terms keep the loop order
    pixel, order = torch.sort(pixel.reshape(-1)[entries], stable=True)
    order = entries[order]
    crow = torch.zeros(b * h * w + 1, dtype=torch.long, device=grad.device)
    torch.cumsum(torch.bincount(pixel, minlength=b * h * w), 0, out=crow[1:])
    cols = torch.div(order, per_bin, rounding_mode='floor')
    values = weight[order]
    rows = grad.permute(0, 2, 3, 1).reshape(k * ph * pw, c)
    out = grad.new_empty((b, c, h * w))
    # a block of pixels at a time: the product comes out (pixels, C) and is written
    # transposed into the output, so only a block's worth is ever held twice
    block = max(1, _BLOCK_ELEMENTS // c)
    for image in range(b):
        for start in range(0, h * w, block):
            stop = min(start + block, h * w)
            first, last = image * h * w + start, image * h * w + stop
            lo, hi = int(crow[first]), int(crow[last])
            with warnings.catch_warnings():  # "CSR support is in beta": mm is all we use
                warnings.filterwarnings('ignore', 'Sparse CSR tensor support is in beta')
                # a row may hold a column twice (two samples of a bin on one pixel): the
                # product adds both, as torchvision does
                matrix = torch.sparse_csr_tensor(
                    crow[first:last + 1] - lo, cols[lo:hi], values[lo:hi],
                    (stop - start, k * ph * pw), check_invariants=False)
            out[image, :, start:stop] = torch.sparse.mm(matrix, rows).t()
    return out.view(b, c, h, w)


class _RoIAlignFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, feats: Tensor, rois: Tensor, output_size: Tuple[int, int],
                spatial_scale: float, sampling_ratio: int, aligned: bool) -> Tensor:
        ctx.save_for_backward(rois)
        ctx.args = (spatial_scale, output_size, sampling_ratio, aligned, tuple(feats.shape))
        return _forward(feats, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        rois, = ctx.saved_tensors
        return (roi_align_backward(grad, rois, *ctx.args), None, None, None, None, None)


def _dense_enough(rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
                  sampling_ratio: int) -> bool:
    """Whether S stays small: adaptive grids take the densest RoI's sample count."""
    if sampling_ratio > 0:
        grid = sampling_ratio * sampling_ratio
    else:
        sides = (rois[:, 3:] - rois[:, 1:3]).max(dim=0).values * spatial_scale
        grid = int(torch.ceil(sides[1] / output_size[0] + 1)) * \
            int(torch.ceil(sides[0] / output_size[1] + 1))
    return rois.size(0) * output_size[0] * output_size[1] * grid * 4 <= _MAX_ENTRIES


def roi_align(feats: Tensor, rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
              sampling_ratio: int, aligned: bool) -> Tensor:
    """``torchvision.ops.roi_align`` (same arguments, ``rois`` ``(K, 5)``), sparse CPU
    backward (see module docstring)."""
    rois = rois.to(feats.dtype).contiguous()
    output_size = tuple(output_size)
    if feats.device.type != 'cpu' or feats.dtype not in (torch.float32, torch.float64) or \
            rois.numel() == 0:
        return tv_roi_align(feats, rois, output_size, spatial_scale, sampling_ratio, aligned)
    if not (feats.requires_grad and torch.is_grad_enabled()):
        return _forward(feats, rois, output_size, spatial_scale, sampling_ratio, aligned)
    if _dense_enough(rois, output_size, spatial_scale, sampling_ratio):
        return _RoIAlignFunction.apply(feats, rois, output_size, float(spatial_scale),
                                       int(sampling_ratio), aligned)
    return tv_roi_align(feats, rois, output_size, spatial_scale, sampling_ratio, aligned)
