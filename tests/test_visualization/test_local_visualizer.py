"""DetLocalVisualizer writes images of the right size with the drawing where the boxes are."""
import uuid

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmft.registry import DATASETS, VISUALIZERS
from mmft.structures import BitmapMasks, DetDataSample
from mmft.visualization import DetLocalVisualizer, get_palette

H, W, GRAY = 64, 96, 100


def _visualizer(**kwargs) -> DetLocalVisualizer:
    vis = DetLocalVisualizer.get_instance(f'vis-{uuid.uuid4().hex}', **kwargs)
    vis.dataset_meta = dict(classes=('cat', 'dog', 'bird'))
    return vis


def _changed(path: str) -> np.ndarray:
    """Per-pixel 'differs from the gray input' map of a written image."""
    img = cv2.imread(path)
    assert img is not None, f'{path} was not written'
    return np.abs(img.astype(int) - GRAY).sum(-1) > 0


def test_gt_boxes_drawn_on_the_box_only(tmp_path):
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 40., 40.]]),
                                       labels=torch.tensor([1]))
    out = str(tmp_path / 'sub' / 'gt.png')
    _visualizer().add_datasample('gt', np.full((H, W, 3), GRAY, np.uint8), sample,
                                 out_file=out)
    changed = _changed(out)
    assert changed.shape == (H, W)
    assert changed[8:41, 7:10].any() and changed[38:42, 8:41].any()  # left, bottom edges
    assert not changed[H // 2:, W // 2:].any()                       # far from the box
    assert not changed[26:36, 14:36].any()                           # box interior, below the label


def test_gt_and_pred_side_by_side_with_score_threshold_and_masks(tmp_path):
    masks = torch.zeros(2, H, W, dtype=torch.bool)
    masks[0, 12:28, 52:78] = True
    masks[1, 42:60, 10:30] = True
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[50., 10., 80., 30.]]),
                                       labels=torch.tensor([0]),
                                       masks=BitmapMasks(masks[:1].numpy().astype(np.uint8), H, W))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[50., 10., 80., 30.], [10., 40., 30., 60.]]),
        labels=torch.tensor([0, 2]), scores=torch.tensor([0.9, 0.2]), masks=masks)
    out = str(tmp_path / 'both.png')
    _visualizer().add_datasample('both', np.full((H, W, 3), GRAY, np.uint8), sample,
                                 out_file=out, pred_score_thr=0.3)
    changed = _changed(out)
    assert changed.shape == (H, 2 * W)
    gt, pred = changed[:, :W], changed[:, W:]
    for panel in (gt, pred):
        assert panel[22:27, 60:70].all()      # mask interior, under no text: blended colour
        assert not panel[:, :40].any()        # the 0.2-score prediction is below the threshold


def test_pred_only_and_palette_from_dataset_meta(tmp_path):
    sample = DetDataSample()
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[4., 4., 60., 60.]]),
                                         labels=torch.tensor([1]), scores=torch.tensor([0.8]))
    vis = _visualizer(line_width=2, alpha=1.0)
    vis.dataset_meta = dict(classes=('a', 'b'), palette=[(0, 0, 0), (255, 0, 0)])
    out = str(tmp_path / 'pred.png')
    vis.add_datasample('pred', np.full((H, W, 3), GRAY, np.uint8), sample, draw_gt=False,
                       out_file=out)
    img = cv2.imread(out)
    assert img.shape == (H, W, 3)
    b, g, r = img[30, 3:7].astype(int).T          # the left edge of the box, BGR on disk
    assert (r - b).max() > 100 and (r - g).max() > 100


def test_empty_gt_instances_of_an_unannotated_image_get_no_panel(tmp_path):
    sample = DetDataSample()
    sample.gt_instances = InstanceData()  # what PackDetInputs packs without LoadAnnotations
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[4., 4., 30., 30.]]),
                                         labels=torch.tensor([0]), scores=torch.tensor([0.8]))
    out = str(tmp_path / 'pred.png')
    _visualizer().add_datasample('pred', np.full((H, W, 3), GRAY, np.uint8), sample,
                                 out_file=out)
    assert cv2.imread(out).shape == (H, W, 3)


def test_vis_backend_receives_the_image_without_out_file(tmp_path):
    vis = _visualizer(vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path))
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 40., 40.]]),
                                       labels=torch.tensor([0]))
    vis.add_datasample('val_img', np.full((H, W, 3), GRAY, np.uint8), sample, step=3)
    img = cv2.imread(str(tmp_path / 'vis_data' / 'vis_image' / 'val_img_3.png'))
    assert img is not None and img.shape == (H, W, 3)


def test_built_from_config_as_default_runtime_names_it():
    vis = VISUALIZERS.build(dict(type='DetLocalVisualizer', name=f'cfg-{uuid.uuid4().hex}',
                                 bbox_color='red'))
    assert isinstance(vis, DetLocalVisualizer) and vis.bbox_color == 'red'


def test_mask_of_another_size_is_refused():
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[1., 1., 5., 5.]]),
                                       labels=torch.tensor([0]),
                                       masks=torch.ones(1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'masks are \(8, 8\)'):
        _visualizer().add_datasample('x', np.zeros((H, W, 3), np.uint8), sample,
                                     out_file='/nonexistent/never.png')


def test_palette_is_deterministic_and_stable_in_num_classes():
    assert get_palette(None, 5) == get_palette('random', 5)
    assert get_palette(None, 3) == get_palette(None, 10)[:3]
    assert get_palette('red', 2) == [(255, 0, 0)] * 2
    assert get_palette((1, 2, 3), 2) == [(1, 2, 3)] * 2
    with pytest.raises(ValueError, match='palette has 1 colours'):
        get_palette([(0, 0, 0)], 3)
    coco = DATASETS.get('CocoDataset')
    if coco is not None:  # MMDetection's dataset palette names
        assert get_palette('coco', 3) == [tuple(c) for c in coco.METAINFO['palette']]
