import pytest
import torch
from torchvision.ops import roi_align

from mmft.registry import MODELS

STRIDES = [4, 8, 16, 32]


def _extractor(output_size=7, **kwargs):
    return MODELS.build(dict(type='SingleRoIExtractor',
                             roi_layer=dict(type='RoIAlign', output_size=output_size,
                                            sampling_ratio=0),
                             out_channels=4, featmap_strides=STRIDES, **kwargs))


def _square_rois(sides, batch_index=0, x0=0.):
    return torch.tensor([[batch_index, x0, 0., x0 + s, s] for s in sides])


def test_map_roi_levels_uses_mmdetection_scale_ranges():
    rois = _square_rois([10, 111, 112, 223, 224, 447, 448, 2000])
    assert _extractor().map_roi_levels(rois, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert _extractor(finest_scale=28).map_roi_levels(rois[:3], 4).tolist() == [0, 1, 2]


def test_each_roi_pooled_from_its_level_and_image():
    # level i of image b is the constant (i + 1) * (10 ** b): the output tells where it came from
    feats = [torch.cat([torch.full((1, 4, 128 // s, 128 // s), float(i + 1)),
                        torch.full((1, 4, 128 // s, 128 // s), float(i + 1) * 10)])
             for i, s in enumerate(STRIDES)] + [torch.zeros(2, 4, 2, 2)]  # the 5th FPN level
    rois = torch.cat([_square_rois([40, 150, 300, 500]), _square_rois([40], batch_index=1)])
    out = _extractor()(feats, rois)
    assert out.shape == (5, 4, 7, 7)
    # RoIs reaching past the map average in zeros at their far edges: compare the first bin
    assert out[:, :, 0, 0].mean(dim=1).tolist() == [1., 2., 3., 4., 10.]


def test_single_level_matches_torchvision_roi_align_aligned():
    torch.manual_seed(0)
    feat = torch.randn(2, 4, 16, 16)
    rois = torch.tensor([[0, 3.3, 4.1, 30.2, 50.7], [1, 0., 0., 63., 63.], [0, 10, 10, 10, 12]])
    ext = MODELS.build(dict(type='SingleRoIExtractor',
                            roi_layer=dict(type='RoIAlign', output_size=(7, 5)),
                            out_channels=4, featmap_strides=[4]))
    expected = roi_align(feat, rois, (7, 5), spatial_scale=0.25, sampling_ratio=0, aligned=True)
    torch.testing.assert_close(ext([feat], rois), expected)
    assert ext.num_inputs == 1 and ext.state_dict() == {}


def test_no_rois_keeps_every_level_in_the_graph():
    feats = [torch.randn(1, 4, 32 // 2**i, 32 // 2**i, requires_grad=True) for i in range(4)]
    out = _extractor(output_size=14)(feats, torch.zeros((0, 5)))
    assert out.shape == (0, 4, 14, 14)
    out.sum().backward()
    assert all(f.grad is not None and not f.grad.any() for f in feats)


def test_roi_scale_factor_enlarges_rois_about_their_centre():
    ext = _extractor()
    rois = torch.tensor([[0., 10., 20., 30., 60.]])
    torch.testing.assert_close(ext.roi_rescale(rois, 2.0), torch.tensor([[0., 0., 0., 40., 80.]]))


def test_errors_name_the_fix():
    with pytest.raises(KeyError, match='RoIAlign'):
        MODELS.build(dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIPool'),
                          out_channels=4, featmap_strides=STRIDES))
    with pytest.raises(ValueError, match="pool_mode='avg'"):
        MODELS.build(dict(type='SingleRoIExtractor',
                          roi_layer=dict(type='RoIAlign', output_size=7, pool_mode='max'),
                          out_channels=4, featmap_strides=STRIDES))
    with pytest.raises(ValueError, match='4 featmap_strides'):
        _extractor()([torch.zeros(1, 4, 8, 8)] * 2, _square_rois([10]))
