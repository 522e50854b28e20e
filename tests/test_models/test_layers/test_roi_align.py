"""mmft's roi_align: torchvision's forward, a sparse CPU backward equal to torchvision's."""
import pytest
import torch
from torchvision.ops import roi_align as tv_roi_align

from mmft.models.layers.roi_align import roi_align, roi_align_backward

ROIS = torch.tensor([[0, 3.3, 4.1, 30.2, 50.7], [1, 0., 0., 63., 63.], [0, 10, 10, 10, 12],
                     [1, -20., -8., 12., 9.], [0, 50., 40., 90., 80.], [1, 60., 2., 61., 3.]])


def _grads(fn, feat, rois, **kwargs):
    feat = feat.clone().requires_grad_(True)
    out = fn(feat, rois, **kwargs)
    out.backward(torch.arange(out.numel(), dtype=out.dtype).view_as(out).sin())
    return out, feat.grad


@pytest.mark.parametrize('sampling_ratio', [0, 2, 3])
@pytest.mark.parametrize('aligned', [True, False])
def test_gradient_matches_torchvision(sampling_ratio, aligned):
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 16, 20)
    args = dict(output_size=(7, 5), spatial_scale=0.25, sampling_ratio=sampling_ratio,
                aligned=aligned)
    out, grad = _grads(roi_align, feat, ROIS, **args)
    expected_out, expected_grad = _grads(tv_roi_align, feat, ROIS, **args)
    assert torch.equal(out, expected_out)
    # the same terms in the same order; the sparse kernel's vector width (CPU-dependent)
    # may still round the last bit differently
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-6)


def test_torchvision_path_without_grad_or_rois():
    feat = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(roi_align(feat, ROIS[:1] * 0, (2, 2), 1., 0, True),
                           tv_roi_align(feat, ROIS[:1] * 0, (2, 2), 1., 0, True))
    feat.requires_grad_(True)
    out = roi_align(feat, torch.zeros((0, 5)), (2, 2), 1., 0, True)
    assert out.shape == (0, 2, 2, 2)


def test_backward_function_on_an_empty_gradient_is_zero():
    grad = roi_align_backward(torch.zeros(1, 2, 2, 2), ROIS[:1], 0.25, (2, 2), 2, True,
                              (2, 2, 16, 20))
    assert grad.shape == (2, 2, 16, 20) and not grad.any()


def test_forward_split_among_threads_is_unchanged():
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 16, 20)
    xy = torch.rand(100, 2) * 60
    rois = torch.cat([torch.randint(0, 2, (100, 1)).float(), xy, xy + torch.rand(100, 2) * 30],
                     dim=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            out = roi_align(feat, rois, (7, 7), 0.25, 0, True)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(out, tv_roi_align(feat, rois, (7, 7), 0.25, 0, True))
