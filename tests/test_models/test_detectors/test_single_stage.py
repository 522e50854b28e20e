"""SingleStageDetector: the head gets the configs and the features, predictions land in samples."""
import torch
from mmengine.structures import InstanceData
from torch import nn

from mmft.registry import MODELS
from mmft.structures import DetDataSample


class _Head(nn.Module):
    """Counts what it is given; one box per image at the feature mean."""

    def __init__(self, train_cfg=None, test_cfg=None):
        super().__init__()
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        self.conv = nn.Conv2d(8, 1, 1)

    def forward(self, feats):
        return [self.conv(f) for f in feats]

    def loss(self, feats, samples):
        return dict(loss_cls=sum(o.mean() for o in self.forward(feats)) * 0 + len(samples))

    def predict(self, feats, samples, rescale=True):
        return [InstanceData(bboxes=torch.zeros(1, 4), scores=torch.ones(1),
                             labels=torch.zeros(1, dtype=torch.long)) for _ in samples]


def test_single_stage_detector_routes_configs_features_and_predictions():
    model = MODELS.build(dict(
        type='SingleStageDetector',
        data_preprocessor=dict(type='DetDataPreprocessor'),
        backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(1, 2)),
        neck=dict(type='FPN', in_channels=[16, 32], out_channels=8, num_outs=2),
        bbox_head=dict(type=_Head), train_cfg=dict(assigner='x'),
        test_cfg=dict(nms=dict(type='nms', iou_threshold=0.5))))
    assert model.bbox_head.train_cfg == dict(assigner='x')
    assert model.bbox_head.test_cfg == dict(nms=dict(type='nms', iou_threshold=0.5))
    assert sorted({k.split('.')[0] for k in model.state_dict()}) == ['backbone', 'bbox_head',
                                                                      'neck']
    images = torch.rand(2, 3, 64, 64)
    outs = model(images, mode='tensor')
    assert [tuple(o.shape) for o in outs] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    samples = [DetDataSample(metainfo=dict(img_shape=(64, 64))) for _ in range(2)]
    assert model(images, samples, mode='loss')['loss_cls'].item() == 2
    preds = model(images, samples, mode='predict')
    assert all(p.pred_instances.bboxes.shape == (1, 4) for p in preds)
