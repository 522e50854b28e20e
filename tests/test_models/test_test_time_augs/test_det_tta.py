"""DetTTAModel: views flipped back into the image's frame, pooled and merged by class-wise NMS."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmft.models.test_time_augs import DetTTAModel
from mmft.registry import MODELS
from mmft.structures import DetDataSample

H, W = 40, 60


class _Recorder(torch.nn.Module):
    """A stand-in detector: DetTTAModel only needs a module with test_step."""

    def test_step(self, data):
        return data['data_samples']


def _view(boxes, scores, labels, flip=None, masks=None):
    s = DetDataSample(metainfo=dict(ori_shape=(H, W), img_shape=(H, W), flip=flip is not None,
                                    flip_direction=flip))
    s.pred_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                    scores=torch.tensor(scores), labels=torch.tensor(labels))
    if masks is not None:
        s.pred_instances.masks = masks
    return s


def _tta(**cfg):
    return MODELS.build(dict(type='DetTTAModel', module=_Recorder(),
                             tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                          max_per_img=100, **cfg)))


def test_flipped_view_is_flipped_back_and_duplicates_merge():
    plain = _view([[10, 5, 20, 15], [30, 10, 50, 30]], [0.9, 0.6], [0, 1])
    # the same two objects seen in a horizontally flipped image: x -> 60 - x
    flipped = _view([[40, 5, 50, 15], [10, 10, 30, 30], [0, 0, 5, 5]], [0.8, 0.7, 0.3],
                    [0, 1, 0], flip='horizontal')
    merged = _tta().test_step(dict(inputs=[[None], [None]], data_samples=[[plain], [flipped]]))
    pred = merged[0].pred_instances
    # object 1: 0.9 (plain) beats 0.8; object 2: 0.7 (flipped, back at [30,10,50,30]) beats 0.6
    assert pred.scores.tolist() == pytest.approx([0.9, 0.7, 0.3])
    torch.testing.assert_close(pred.bboxes, torch.tensor([[10., 5, 20, 15], [30, 10, 50, 30],
                                                          [55, 0, 60, 5]]))
    assert pred.labels.tolist() == [0, 1, 0]
    assert merged[0].flip is False


def test_nms_is_class_wise_unless_class_agnostic_and_max_per_img():
    a = _view([[10, 5, 20, 15]], [0.9], [0])
    b = _view([[10, 5, 20, 15]], [0.8], [1], flip='vertical')  # different class, flipped
    b.pred_instances.bboxes = torch.tensor([[10., 25, 20, 35]])  # same place after unflip
    views = dict(inputs=[[None], [None]], data_samples=[[a], [b]])
    assert len(_tta().test_step(views)[0].pred_instances) == 2
    a, b = _view([[10, 5, 20, 15]], [0.9], [0]), _view([[10, 25, 20, 35]], [0.8], [1], 'vertical')
    tta = MODELS.build(dict(type='DetTTAModel', module=_Recorder(), tta_cfg=dict(
        nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True), max_per_img=1)))
    pred = tta.test_step(dict(inputs=[[None], [None]], data_samples=[[a], [b]]))[0]
    assert pred.pred_instances.labels.tolist() == [0]


def test_masks_follow_their_boxes():
    masks = torch.zeros(1, H, W, dtype=torch.bool)
    masks[0, 5:15, 40:50] = True  # the flipped view's mask of box [40, 5, 50, 15]
    flipped = _view([[40, 5, 50, 15]], [0.8], [0], flip='horizontal', masks=masks)
    plain = _view([[0, 0, 4, 4]], [0.5], [0], masks=torch.zeros(1, H, W, dtype=torch.bool))
    pred = _tta().test_step(dict(inputs=[[None], [None]],
                                 data_samples=[[flipped], [plain]]))[0].pred_instances
    assert pred.masks.shape == (2, H, W)
    ys, xs = torch.nonzero(pred.masks[0], as_tuple=True)
    assert (xs.min().item(), xs.max().item() + 1) == (10, 20)  # unflipped, as its box
    assert pred.bboxes[0].tolist() == [10, 5, 20, 15]


def test_empty_views_and_bad_cfg():
    empty = _view(torch.zeros(0, 4).tolist(), [], [])
    empty.pred_instances.labels = torch.zeros(0, dtype=torch.long)
    out = _tta().test_step(dict(inputs=[[None]], data_samples=[[empty]]))[0]
    assert len(out.pred_instances) == 0
    with pytest.raises(ValueError, match='soft-NMS'):
        DetTTAModel(module=_Recorder(), tta_cfg=dict(nms=dict(type='soft_nms',
                                                              iou_threshold=0.5)))
