"""mmft/finetune/distill.py: ILOD's RoI-head distillation on shared proposals
(Faster / Mask R-CNN, 10 old classes + 2 new), and its pieces."""
import copy

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from torch.nn.modules.batchnorm import _BatchNorm

from mmft.finetune.distill import (ROI_CLS, ROI_REG, RPN_OBJECTNESS, RoIDistiller,
                                   distillation_loss, least_background, roi_distillable,
                                   roi_distillation_loss, rois_on_boxes,
                                   unbiased_roi_distillation_loss)
from mmft.registry import MODELS
from mmft.structures import BitmapMasks, DetDataSample
from mmft.structures.class_rows import copy_class_rows, find_class_rows
from tests.tiny_runs import tiny_config

OLD, NEW = 10, 2


def _model_cfg(num_classes: int, with_mask: bool) -> dict:
    model = copy.deepcopy(tiny_config('unused', 'unused').model.to_dict())
    model['roi_head']['bbox_head']['num_classes'] = num_classes
    model['roi_head']['mask_head']['num_classes'] = num_classes
    if not with_mask:  # Faster R-CNN: the same model without the mask branch
        model['type'] = 'FasterRCNN'
        for key in ('mask_head', 'mask_roi_extractor'):
            model['roi_head'].pop(key)
    return model


def _pair(with_mask: bool):
    """A 10-class teacher and a 12-class student that equals it on the old classes."""
    torch.manual_seed(0)
    teacher = MODELS.build(_model_cfg(OLD, with_mask))
    teacher.init_weights()
    student = MODELS.build(_model_cfg(OLD + NEW, with_mask))
    student.init_weights()
    t_state, t_rows = teacher.state_dict(), find_class_rows(teacher)
    s_rows = find_class_rows(student)
    state = {}
    for key, value in student.state_dict().items():
        if key in s_rows:  # old rows (and background) from the teacher, new rows as built
            value = copy_class_rows(value, s_rows[key], t_state[key], t_rows[key],
                                    list(range(OLD)) + [None] * NEW)
        else:
            value = t_state[key]
        state[key] = value
    student.load_state_dict(state)
    teacher.requires_grad_(False).eval()
    student.train()
    for module in student.modules():  # batch statistics would make the features differ
        if isinstance(module, _BatchNorm):
            module.eval()
    return student, teacher


def _batch(size=64):
    torch.manual_seed(1)
    inputs = torch.rand(2, 3, size, size) * 255
    samples = []
    for boxes, labels in (([[4, 4, 30, 30], [34, 10, 60, 40]], [10, 11]), ([[8, 20, 40, 56]],
                                                                            [3])):
        meta = dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                    batch_input_shape=(size, size), scale_factor=(1., 1.))
        sample = DetDataSample(metainfo=meta)
        masks = np.zeros((len(boxes), size, size), np.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, boxes):
            m[y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                           labels=torch.tensor(labels),
                                           masks=BitmapMasks(masks, size, size))
        samples.append(sample)
    return inputs, samples


def _distil(student, teacher, distiller, new_boxes=None):
    """One training step's worth: the teacher's pass, the student's loss, the RoI losses."""
    inputs, samples = _batch()
    data = student.data_preprocessor(dict(inputs=list(inputs), data_samples=samples), True)
    with torch.no_grad():
        teacher.extract_feat(data['inputs'])
    distiller.clear()
    student.loss(data['inputs'], data['data_samples'])
    return distiller.loss(new_boxes)


@pytest.mark.parametrize('with_mask', [True, False], ids=['mask_rcnn', 'faster_rcnn'])
def test_roi_distillation_is_zero_for_the_teacher_itself_whatever_the_new_rows(with_mask):
    student, teacher = _pair(with_mask)
    distiller = RoIDistiller(student, teacher, OLD, num_rois=16, cls_loss='l2')
    # the 10 old classes and the background: rows 0-9 and 12 of the student's, 0-10 of the
    # teacher's fc_cls; the old classes' 4 delta rows each of fc_reg
    assert distiller.cls_rows[0].tolist() == list(range(OLD)) + [OLD + NEW]
    assert distiller.cls_rows[1].tolist() == list(range(OLD + 1))
    assert distiller.reg_rows[0].tolist() == distiller.reg_rows[1].tolist() == \
        list(range(4 * OLD))
    with torch.no_grad():  # new classes' rows play no part
        student.roi_head.bbox_head.fc_cls.weight[OLD:OLD + NEW] += 5.
        student.roi_head.bbox_head.fc_reg.weight[4 * OLD:] -= 5.
    losses = _distil(student, teacher, distiller)
    assert set(losses) == {'loss_distill_roi_cls', 'loss_distill_roi_bbox'}
    assert all(float(v.detach()) < 1e-10 for v in losses.values())
    # the same RoIs in both heads: 16 of each image's sampled RoIs
    assert len(distiller.rois[0]) == len(distiller.student_out[0][0]) > 32
    distiller.remove()


@pytest.mark.parametrize('with_mask', [True, False], ids=['mask_rcnn', 'faster_rcnn'])
def test_roi_distillation_pulls_the_students_old_rows_only(with_mask):
    student, teacher = _pair(with_mask)
    distiller = RoIDistiller(student, teacher, OLD, num_rois=16, cls_loss='l2')
    head = student.roi_head.bbox_head
    with torch.no_grad():
        head.fc_cls.weight[:OLD] += 0.05 * torch.randn_like(head.fc_cls.weight[:OLD])
        head.fc_reg.weight[:4 * OLD] += 0.05 * torch.randn_like(head.fc_reg.weight[:4 * OLD])
    losses = _distil(student, teacher, distiller)
    assert all(float(v.detach()) > 0 for v in losses.values())
    student.zero_grad()
    sum(losses.values()).backward()
    cls_grad, reg_grad = head.fc_cls.weight.grad, head.fc_reg.weight.grad
    assert cls_grad[:OLD].abs().sum() > 0 and cls_grad[-1].abs().sum() > 0  # background
    assert cls_grad[OLD:OLD + NEW].abs().sum() == 0
    assert reg_grad[:4 * OLD].abs().sum() > 0 and reg_grad[4 * OLD:].abs().sum() == 0
    # through the RoI head's shared layers into the features, none into the teacher
    assert head.shared_fcs[0].weight.grad.abs().sum() > 0
    assert student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_roi_distillation_without_box_deltas_and_its_errors():
    student, teacher = _pair(with_mask=False)
    distiller = RoIDistiller(student, teacher, OLD, bbox=False, cls_loss='l2')
    with pytest.raises(ValueError, match='the teacher has not seen the batch'):
        distiller.rois.append(torch.zeros(1, 5))
        distiller.student_out.append((torch.zeros(1, 13), None))
        distiller.loss()
    assert set(_distil(student, teacher, distiller)) == {'loss_distill_roi_cls'}
    distiller.clear()
    with pytest.raises(ValueError, match='RoI box head did not run'):
        distiller.loss()
    retina = MODELS.build(dict(type='RetinaNet', backbone=_model_cfg(OLD, False)['backbone'],
                               bbox_head=dict(type='RetinaHead', num_classes=OLD,
                                              in_channels=8)))
    assert not roi_distillable(retina) and roi_distillable(student)
    with pytest.raises(ValueError, match='the student RetinaNet has no single box branch.*'
                                         'distill_roi=False'):
        RoIDistiller(retina, teacher, OLD)
    assert {ROI_CLS, ROI_REG} <= set(find_class_rows(student))


def test_least_background_picks_per_image():
    # background last; image 0 has RoIs 0-2, image 1 RoIs 3-4
    logits = torch.tensor([[0., 2.], [3., 0.], [1., 1.], [0., 5.], [2., 0.]])
    keep = least_background(logits, torch.tensor([0., 0., 0., 1., 1.]), torch.tensor([1]), 2)
    assert keep.tolist() == [1, 2, 4, 3]  # image 1 has only 2: both, least background first


def test_rois_on_boxes_compares_each_roi_with_its_own_images_boxes():
    rois = torch.tensor([[0, 0, 0, 10, 10], [0, 0, 0, 10, 4], [1, 0, 0, 10, 10],
                         [1, 20, 20, 30, 30.]])
    boxes = [torch.tensor([[0, 0, 10, 10.]]), torch.zeros(0, 4)]
    # RoI 1 has IoU 0.4 with image 0's box; RoI 2 is on the same pixels, but in image 1
    assert rois_on_boxes(rois, boxes, 0.5).tolist() == [True, False, False, False]
    assert rois_on_boxes(rois, boxes, 0.3).tolist() == [True, True, False, False]


@pytest.mark.parametrize('cls_loss', ['unbiased', 'l2'])
def test_roi_distillation_leaves_the_classifier_free_on_labelled_new_objects(cls_loss):
    student, teacher = _pair(with_mask=False)
    distiller = RoIDistiller(student, teacher, OLD, num_rois=64, cls_loss=cls_loss)
    head = student.roi_head.bbox_head
    with torch.no_grad():
        head.fc_cls.weight[:OLD] += 0.05 * torch.randn_like(head.fc_cls.weight[:OLD])
        head.fc_reg.weight[:4 * OLD] += 0.05 * torch.randn_like(head.fc_reg.weight[:4 * OLD])
    every = _distil(student, teacher, distiller)
    # image 0's two objects are new (labels 10, 11): the student samples them as RoIs
    new_boxes = [_batch()[1][0].gt_instances.bboxes, torch.zeros(0, 4)]
    skipped = _distil(student, teacher, distiller, new_boxes)
    assert int(rois_on_boxes(distiller.rois[0], new_boxes, 0.5).sum()) > 0
    assert float(skipped['loss_distill_roi_cls'].detach()) != pytest.approx(
        float(every['loss_distill_roi_cls'].detach()), rel=1e-4)
    # the old classes' box deltas are distilled there all the same
    assert float(skipped['loss_distill_roi_bbox'].detach()) == \
        float(every['loss_distill_roi_bbox'].detach())
    # every RoI on a new object: no classifier term at all, a zero that keeps the graph
    all_rois = [distiller.rois[0][distiller.rois[0][:, 0] == i, 1:] for i in range(2)]
    nothing = _distil(student, teacher, distiller, all_rois)
    assert float(nothing['loss_distill_roi_cls'].detach()) == 0
    assert nothing['loss_distill_roi_cls'].requires_grad
    # new_iou=None: the same RoIs as without new boxes
    distiller.new_iou = None
    again = _distil(student, teacher, distiller, new_boxes)
    assert float(again['loss_distill_roi_cls'].detach()) == \
        float(every['loss_distill_roi_cls'].detach())
    distiller.remove()


def test_roi_distillation_loss_is_blind_to_a_shift_of_all_logits():
    torch.manual_seed(0)
    s, t = torch.randn(6, 11), torch.randn(6, 11)
    loss = roi_distillation_loss(s, t)['loss_distill_roi_cls']
    assert torch.allclose(roi_distillation_loss(s + 3., t)['loss_distill_roi_cls'], loss)
    centred = (s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
    assert torch.allclose(loss, (centred ** 2).mean())
    with pytest.raises(ValueError, match=r'old-class cls outputs are \(6, 11\), the '
                                         r"teacher's \(6, 10\)"):
        roi_distillation_loss(s, t[:, :10])


def test_unbiased_roi_distillation_groups_background_with_the_new_classes():
    torch.manual_seed(0)
    # student: 3 old, 2 new, background last; teacher: 3 old, background last
    s_old, s_bg_new, t_old, t_bg = (torch.tensor([0, 1, 2]), torch.tensor([5, 3, 4]),
                                    torch.tensor([0, 1, 2]), torch.tensor([3]))
    teacher = torch.randn(4, 4)
    student = torch.cat([teacher[:, :3], torch.full((4, 2), -30.), teacher[:, 3:]], 1)
    assert unbiased_roi_distillation_loss(student, teacher, s_old, s_bg_new, t_old,
                                          t_bg) < 1e-6
    # the teacher's background mass moved to a new class: still the teacher's grouping
    moved = student.clone()
    moved[:, 3], moved[:, 5] = student[:, 5], student[:, 3]
    assert unbiased_roi_distillation_loss(moved, teacher, s_old, s_bg_new, t_old,
                                          t_bg) < 1e-6
    # ... which the ILOD L2 on old + background logits punishes
    assert roi_distillation_loss(moved[:, [0, 1, 2, 5]],
                                 teacher)['loss_distill_roi_cls'] > 1.
    # an old class' probability taken: KL > 0, by hand
    worse = student.clone()
    worse[:, 0] -= 2.
    p_t = teacher.softmax(1)
    p_s = worse.softmax(1)
    p_s = torch.cat([p_s[:, :3], p_s[:, 3:].sum(1, keepdim=True)], 1)
    expected = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    got = unbiased_roi_distillation_loss(worse, teacher, s_old, s_bg_new, t_old, t_bg)
    assert torch.allclose(got, expected, atol=1e-6) and got > 0.01
    with pytest.raises(ValueError, match='4 student RoIs with 3 old classes against 3'):
        unbiased_roi_distillation_loss(student, teacher[:3], s_old, s_bg_new, t_old, t_bg)


def test_unbiased_roi_distiller_leaves_new_rows_free_and_pulls_old_ones():
    student, teacher = _pair(with_mask=False)
    distiller = RoIDistiller(student, teacher, OLD, num_rois=16, cls_loss='unbiased')
    s_old, s_bg_new, t_old = distiller.unbiased
    assert s_old.tolist() == t_old.tolist() == list(range(OLD))
    assert sorted(s_bg_new.tolist()) == [OLD, OLD + 1, OLD + NEW]
    head = student.roi_head.bbox_head
    with torch.no_grad():
        head.fc_cls.bias[OLD:OLD + NEW] = -50.  # new classes never predicted: the teacher
    losses = _distil(student, teacher, distiller)
    assert float(losses['loss_distill_roi_cls'].detach()) < 1e-6
    with torch.no_grad():
        head.fc_cls.weight[:OLD] += 0.05 * torch.randn_like(head.fc_cls.weight[:OLD])
    losses = _distil(student, teacher, distiller)
    assert float(losses['loss_distill_roi_cls'].detach()) > 0
    student.zero_grad()
    losses['loss_distill_roi_cls'].backward()
    assert head.fc_cls.weight.grad[:OLD].abs().sum() > 0
    with pytest.raises(ValueError, match=r"classifier loss is one of \('l2', 'unbiased'\)"):
        RoIDistiller(student, teacher, OLD, cls_loss='kl')
    distiller.remove()


def test_rpn_objectness_distillation_only_punishes_a_student_below_the_teacher():
    teacher = torch.zeros(1, 3, 4, 4)
    above, below = teacher + 2., teacher - 2.
    channels = {RPN_OBJECTNESS: None, 'bbox_head.retina_cls': None}
    for name in channels:
        loss_above = distillation_loss({name: [above]}, {name: [teacher]},
                                       {name: None}, {name: None})
        loss_below = distillation_loss({name: [below]}, {name: [teacher]},
                                       {name: None}, {name: None})
        assert float(loss_below) == 4.
        # new objects may rise above the teacher's objectness; class logits may not
        assert float(loss_above) == (0. if name == RPN_OBJECTNESS else 4.)
