"""finetune.incremental: class union, config set-up, pseudo-label selection."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmft.finetune.config import FinetuneConfig, IncrementalOptions
from mmft.finetune.incremental import (add_pseudo_labels, apply_incremental, label_map,
                                       select_pseudo_labels, teacher_model_cfg, union_classes)
from mmft.structures.masks import BitmapMasks

OLD = ('circle', 'square', 'triangle')
NEW = ('pentagon', 'Circle', 'arrow')


def test_union_keeps_old_order_and_appends_only_new_names():
    union = union_classes(OLD, NEW)
    assert union == ('circle', 'square', 'triangle', 'pentagon', 'arrow')
    # the dataset's 'Circle' is the old 'circle': its labels go to row 0
    assert label_map(NEW, union).tolist() == [3, 0, 4]


def test_options_parse_bool_dict_and_reject_bad_values():
    assert FinetuneConfig.from_cfg({}).incremental.enabled is False
    assert FinetuneConfig.from_cfg(dict(incremental=True)).incremental == \
        IncrementalOptions(enabled=True)
    opts = FinetuneConfig.from_cfg(dict(incremental=dict(score_thr=0.7))).incremental
    assert opts.enabled and opts.score_thr == 0.7 and opts.pseudo_labels
    with pytest.raises(ValueError, match='unknown finetune.incremental option'):
        FinetuneConfig.from_cfg(dict(incremental=dict(score=0.7)))
    with pytest.raises(ValueError, match=r'score_thr is in \[0, 1\]'):
        FinetuneConfig.from_cfg(dict(incremental=dict(score_thr=3)))
    opts = FinetuneConfig.from_cfg(dict(incremental=True)).incremental
    assert (opts.distill_dense, opts.distill_roi, opts.distill_roi_bbox, opts.distill_roi_num) \
        == (True, True, True, 64)
    with pytest.raises(ValueError, match=r'distill_roi_num is the RoIs per image to distil, an '
                                         r'int >= 1; got 0'):
        FinetuneConfig.from_cfg(dict(incremental=dict(distill_roi_num=0)))
    with pytest.raises(ValueError, match='distill_roi_weight must be >= 0, got -1'):
        FinetuneConfig.from_cfg(dict(incremental=dict(distill_roi_weight=-1)))
    assert opts.distill_roi_loss == 'unbiased'
    with pytest.raises(ValueError, match=r"distill_roi_loss is one of \('l2', 'unbiased'\), "
                                         r"got 'kl'"):
        FinetuneConfig.from_cfg(dict(incremental=dict(distill_roi_loss='kl')))


def _cfg(**finetune):
    dataset = dict(type='CocoDataset', metainfo=dict(classes=NEW[::2]))
    return Config(dict(
        finetune=dict(incremental=True, source_classes=OLD, **finetune),
        model=dict(type='MaskRCNN',
                   rpn_head=dict(type='RPNHead', num_classes=1),
                   roi_head=dict(bbox_head=dict(type='Shared2FCBBoxHead', num_classes='auto'),
                                 mask_head=dict(type='FCNMaskHead', num_classes='auto'))),
        train_dataloader=dict(dataset=dataset),
        val_dataloader=dict(dataset=dict(type='CocoDataset')),
        val_evaluator=dict(type='IncrementalCocoMetric')))


def test_apply_incremental_counts_old_and_new():
    cfg = _cfg()
    union = apply_incremental(cfg)
    assert union == OLD + ('pentagon', 'arrow')
    assert cfg.model.roi_head.bbox_head.num_classes == 5
    assert cfg.model.roi_head.mask_head.num_classes == 5
    assert cfg.model.rpn_head.num_classes == 1  # objectness does not follow the data
    assert cfg.train_dataloader.dataset.metainfo.classes == ('pentagon', 'arrow')
    assert tuple(cfg.val_dataloader.dataset.metainfo.classes) == union
    assert tuple(cfg.val_evaluator.old_classes) == OLD
    teacher = teacher_model_cfg(cfg.model, len(OLD))
    assert teacher['roi_head']['bbox_head']['num_classes'] == 3
    assert cfg.model.roi_head.bbox_head.num_classes == 5  # the student's is untouched


def test_apply_incremental_refuses_a_wrong_head_count_and_val_classes():
    cfg = _cfg()
    cfg.model.roi_head.bbox_head.num_classes = 2
    with pytest.raises(ValueError, match=r'bbox_head.num_classes=2 but finetune.incremental '
                                         r'gives 5 classes \(3 old \+ 2 new'):
        apply_incremental(cfg)
    cfg = _cfg()
    cfg.val_dataloader.dataset.metainfo = dict(classes=('square',))
    with pytest.raises(ValueError, match='leave it unset or give the union'):
        apply_incremental(cfg)


def test_apply_incremental_needs_the_old_classes():
    cfg = _cfg()
    cfg.finetune.pop('source_classes')
    with pytest.raises(ValueError, match='set load_from'):
        apply_incremental(cfg)


def _pred(boxes, scores, labels, masks=None):
    pred = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores), labels=torch.tensor(labels))
    if masks is not None:
        pred.masks = masks
    return pred


def test_pseudo_labels_take_confident_old_class_boxes_away_from_gt():
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([3]))
    pred = _pred([[0, 0, 10, 10],    # duplicates the labelled object: dropped
                  [20, 20, 30, 30],  # confident old class: kept
                  [40, 40, 50, 50],  # not confident: dropped
                  [20, 0, 30, 10]],  # a new class: the student learns those from labels
                 [0.9, 0.8, 0.3, 0.9], [1, 2, 0, 3])
    assert select_pseudo_labels(pred, gt.bboxes, 3, 0.5, 0.5).tolist() == [1]
    out = add_pseudo_labels(gt, pred, num_old=3)
    assert out.labels.tolist() == [3, 2]
    assert out.bboxes[1].tolist() == [20, 20, 30, 30]
    assert add_pseudo_labels(gt, pred, 3, score_thr=0.95) is gt  # nothing to add


def test_pseudo_labels_extend_masks_at_the_gt_mask_size():
    gt_mask = np.zeros((1, 16, 20), dtype=np.uint8)
    gt_mask[0, :4, :4] = 1
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 4., 4.]]), labels=torch.tensor([4]),
                      masks=BitmapMasks(gt_mask, 16, 20))
    teacher_masks = torch.zeros((1, 18, 18), dtype=torch.bool)  # teacher's own size
    teacher_masks[0, 8:12, 8:12] = True
    out = add_pseudo_labels(gt, _pred([[8, 8, 12, 12]], [0.9], [0], teacher_masks), 3)
    masks = out.masks.to_ndarray()
    assert masks.shape == (2, 16, 20) and masks[0].sum() == 16
    assert masks[1, 8:12, 8:12].all() and masks[1].sum() == 16
    # a teacher without masks: the box is the mask
    out = add_pseudo_labels(gt, _pred([[2, 6, 5, 9]], [0.9], [1]), 3)
    assert out.masks.to_ndarray()[1].sum() == 9


def test_teacher_score_thr_keeps_the_same_confident_detections(repo_root):
    """Raising the teacher's test score_thr to the pseudo-labels' changes none of the
    detections at or above it (boxes, scores, labels, masks): it only skips work."""
    from mmft.registry import MODELS
    from mmft.structures.det_data_sample import DetDataSample
    cfg = Config.fromfile(f'{repo_root}/configs/_base_/models/mask_rcnn_r18_fpn_small.py')
    cfg.model.roi_head.bbox_head.num_classes = cfg.model.roi_head.mask_head.num_classes = 3
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rcnn.max_per_img = 300  # no cap: the low detections show
    assert cfg.model.test_cfg.rcnn.score_thr == 0.05
    high = teacher_model_cfg(cfg.model, 3, score_thr=0.3)
    assert high['test_cfg']['rcnn']['score_thr'] == 0.3
    assert cfg.model.test_cfg.rcnn.score_thr == 0.05  # the student's is untouched
    assert teacher_model_cfg(cfg.model, 3, score_thr=0.01)['test_cfg']['rcnn']['score_thr'] \
        == 0.05  # only ever raised
    torch.manual_seed(0)
    models = [MODELS.build(teacher_model_cfg(cfg.model, 3)), MODELS.build(high)]
    models[1].load_state_dict(models[0].state_dict())
    with torch.no_grad():  # spread the random classifier's scores over (0, 1)
        for model in models:
            model.roi_head.bbox_head.fc_cls.weight.mul_(2)
    images = torch.rand(2, 3, 64, 64) * 255
    outputs = []
    for model in models:
        model.eval()
        samples = [DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                               scale_factor=(1., 1.))) for _ in images]
        with torch.no_grad():
            data = model.data_preprocessor(dict(inputs=list(images), data_samples=samples))
            outputs.append(model.predict(data['inputs'], data['data_samples'], rescale=False))
    confident = 0
    for low_pred, high_pred in zip(*outputs):
        low, high_ = low_pred.pred_instances, high_pred.pred_instances
        assert bool((high_.scores >= 0.3).all())
        keep = low.scores >= 0.3
        assert int(keep.sum()) == len(high_) and bool(((low.scores > 0.05) & ~keep).any())
        order_low, order_high = low.scores[keep].argsort(), high_.scores.argsort()
        for key in ('bboxes', 'scores', 'labels', 'masks'):
            torch.testing.assert_close(low[key][keep][order_low], high_[key][order_high])
        confident += len(high_)
    assert confident > 0
