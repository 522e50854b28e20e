"""Logit distillation of the old classes, for ``finetune.incremental.distill``.

The teacher (frozen pretrained model) and the student see the same batch; the student's
old-class outputs are pulled towards the teacher's (Shmelkov et al., 2017, "Incremental
Learning of Object Detectors without Catastrophic Forgetting", ILOD: L2 on the RoI
classifier's logits and box deltas of the old classes; Peng et al., 2020, "Faster ILOD",
adds the RPN). Two parts, each switchable:

- **dense outputs** (``distill_dense``, ``loss_distill``): every layer whose class rows the
  heads declare (``class_rows()``, one row per class: classifiers, not box regressors) and
  whose output is a dense map ``(B, C, H, W)``, i.e. one-stage class outputs (RetinaNet's
  ``retina_cls``, FCOS, ATSS, SSD's ``cls_convs.i``, the class rows of YOLOv3's
  ``convs_pred.i``), plus the RPN's objectness ``rpn_head.rpn_cls`` of two-stage
  detectors. Channel ``k`` of a conv's output is row ``k`` of its weight, so the declared
  rows pick the old classes' channels (and the background channel of softmax layouts) in
  both models; plain L2 on the class logits, and Faster ILOD's filtered L2 on the RPN
  objectness (only a student below the teacher is penalised);
- **the RoI head on shared proposals** (``distill_roi``, :class:`RoIDistiller`,
  ``loss_distill_roi_cls`` / ``loss_distill_roi_bbox``): each model proposes its own RoIs,
  so their RoI logits are only comparable on one set. The student's sampled RoIs of the
  iteration (the ones its box head scores anyway) are scored by the teacher's RoI head on
  the teacher's own features; of those, the ``num_rois`` per image the teacher finds least
  background are distilled (ILOD samples among its 128 least-background proposals), except
  RoIs on a labelled new-class object (``distill_roi_new_iou``): the teacher never saw a
  pentagon, and what it says of one (a hexagon, confidently) would pull the student away
  from the label it is learning there. The
  classifier's outputs are compared as probabilities with the background unbiased
  (``distill_roi_loss='unbiased'``, the default; Cermelli et al., 2022, "Modeling Missing
  Annotations for Incremental Learning in Object Detection", MMA: the teacher's background
  is the student's background *or any new class*, since the teacher never learnt the new
  ones), or as mean-subtracted old-class and background logits (``'l2'``, ILOD's L2: a
  softmax is blind to a shift of all logits, so is the loss); the old classes' box deltas
  plainly.

Outputs are caught with forward hooks, so no head changes; the losses are added to the
student's ``loss()`` dict by the training hook.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmft.finetune.config import ROI_CLS_LOSSES
from mmft.structures.bbox import bbox_overlaps
from mmft.structures.class_rows import ClassRows, find_class_rows

#: a two-stage detector's class-free dense output distilled too (Faster ILOD)
RPN_OBJECTNESS = 'rpn_head.rpn_cls'
#: the RoI box head's declared classifier and regressor (StandardRoIHead layout)
ROI_CLS, ROI_REG = 'roi_head.bbox_head.fc_cls.weight', 'roi_head.bbox_head.fc_reg.weight'


def rows_of_classes(rows: ClassRows, start: int, stop: int) -> List[Tensor]:
    """The rows of classes ``start .. stop - 1`` of ``rows``, class by class."""
    return [rows.rows_of(i) for i in range(start, min(stop, rows.num_classes))]


def old_class_rows(rows: ClassRows, num_old: int) -> Tensor:
    """Sorted rows of classes ``0 .. num_old - 1`` and the background rows of ``rows``."""
    return torch.cat(rows_of_classes(rows, 0, num_old) + [rows.background_rows()]).sort().values


def distilled_channels(model: nn.Module, num_classes: int
                       ) -> Dict[str, Optional[Tensor]]:
    """``module path -> output channels`` to distil (None: all of them).

    Declared one-row-per-class layers outside ``roi_head`` give the rows of classes ``0 .. num_classes - 1``
    and their background rows; ``rpn_head.rpn_cls`` gives all its channels.
    """
    out: Dict[str, Optional[Tensor]] = {}
    for key, rows in find_class_rows(model).items():
        module, _, name = key.rpartition('.')
        # RoI heads see each model's own proposals: RoIDistiller runs both on one set
        if name != 'weight' or rows.per_class != 1 or module.startswith('roi_head.'):
            continue
        out[module] = old_class_rows(rows, num_classes)
    modules = dict(model.named_modules())
    if RPN_OBJECTNESS in modules:
        out[RPN_OBJECTNESS] = None
    return out


class OutputRecorder:
    """Forward hooks that keep the dense ``(B, C, H, W)`` outputs of chosen modules."""

    def __init__(self, model: nn.Module, modules: List[str], training_only: bool = False
                 ) -> None:
        self.training_only = training_only  # the student's validation passes are not kept
        self.outputs: Dict[str, List[Tensor]] = {m: [] for m in modules}
        named = dict(model.named_modules())
        self.handles = [named[m].register_forward_hook(self._hook(m)) for m in modules]

    def _hook(self, name: str):
        def record(module, inputs, output):
            if isinstance(output, Tensor) and output.dim() == 4 and \
                    (module.training or not self.training_only):
                self.outputs[name].append(output)
        return record

    def clear(self) -> None:
        for outs in self.outputs.values():
            outs.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def distillation_loss(student: Dict[str, List[Tensor]], teacher: Dict[str, List[Tensor]],
                      student_channels: Dict[str, Optional[Tensor]],
                      teacher_channels: Dict[str, Optional[Tensor]]) -> Tensor:
    """Mean over modules of the mean squared difference of the selected logits.

    The RPN objectness (class-free) is penalised only where the student's is below the
    teacher's (Faster ILOD's filtered L2), so the student can learn to propose the new
    classes' objects, which the teacher takes for background.

    Raises:
        ValueError: a module's outputs differ in count or size between the two models
            (the teacher did not see the student's batch).
    """
    losses = []
    for name, outs in student.items():
        t_outs = teacher.get(name, [])
        if not outs:
            continue
        if len(outs) != len(t_outs):
            raise ValueError(f'distillation: {name} ran {len(outs)} times in the student but '
                             f'{len(t_outs)} in the teacher on the same batch')
        s_idx, t_idx = student_channels[name], teacher_channels[name]
        diffs = []
        for s, t in zip(outs, t_outs):
            s = s if s_idx is None else s.index_select(1, s_idx.to(s.device))
            t = t if t_idx is None else t.index_select(1, t_idx.to(t.device))
            if s.shape != t.shape:
                raise ValueError(f'distillation: {name} gives {tuple(s.shape)} in the student '
                                 f'and {tuple(t.shape)} in the teacher for the old classes; '
                                 'both must see the same images at the same size')
            diff = t.detach() - s
            if name == RPN_OBJECTNESS:
                # Faster ILOD's filtered L2: only where the student finds less object than
                # the teacher; new objects (background to the teacher) may rise freely
                diff = diff.clamp(min=0)
            diffs.append((diff ** 2).mean())
        losses.append(torch.stack(diffs).mean())
    if not losses:
        raise ValueError('distillation: no distilled output was computed in this iteration')
    return torch.stack(losses).mean()


def channel_maps(student: nn.Module, teacher: nn.Module, num_old: int
                 ) -> Tuple[Dict[str, Optional[Tensor]], Dict[str, Optional[Tensor]]]:
    """The distilled channels of both models (the same modules, each its own layout).

    Raises:
        ValueError: the student has no output to distil.
    """
    s_map = distilled_channels(student, num_old)
    t_map = distilled_channels(teacher, num_old)
    s_map = {m: c for m, c in s_map.items() if m in t_map}
    if not s_map:
        raise ValueError(f'finetune.incremental.distill: {type(student).__name__} has no '
                         'dense class output (one-stage class layer or RPN objectness) to '
                         'distil; set distill=False')
    return s_map, {m: t_map[m] for m in s_map}


# ------------------------------------------------------------------------- RoI head (ILOD)
def roi_distillable(model: nn.Module) -> bool:
    """Whether ``model`` has one box branch of StandardRoIHead's layout (``roi_head``'s
    ``bbox_roi_extractor`` and ``bbox_head`` with a declared ``fc_cls``; not cascades)."""
    roi_head = getattr(model, 'roi_head', None)
    parts = [getattr(roi_head, name, None) for name in ('bbox_roi_extractor', 'bbox_head')]
    if not all(isinstance(p, nn.Module) and not isinstance(p, nn.ModuleList) for p in parts):
        return False
    return ROI_CLS in find_class_rows(model)


def rois_on_boxes(rois: Tensor, boxes: Sequence[Tensor], iou_thr: float) -> Tensor:
    """``(K,)`` bool: RoI ``k`` overlaps a box of its own image by IoU > ``iou_thr``.

    Args:
        rois: ``(K, 5)`` RoIs, ``(image, x1, y1, x2, y2)``.
        boxes: per image of the batch, ``(N_i, 4)`` boxes in the same pixels.
    """
    out = torch.zeros(len(rois), dtype=torch.bool, device=rois.device)
    for image, image_boxes in enumerate(boxes):
        inds = (rois[:, 0] == image).nonzero(as_tuple=True)[0]
        if len(inds) and len(image_boxes):
            ious = bbox_overlaps(rois[inds, 1:], image_boxes.to(rois))
            out[inds] = ious.max(dim=1).values > iou_thr
    return out


def least_background(teacher_cls: Tensor, image_index: Tensor, background: Tensor,
                     num: int) -> Tensor:
    """Indices of the ``num`` RoIs per image with the lowest teacher background probability.

    Args:
        teacher_cls: ``(K, C)`` teacher RoI logits (softmax over the columns).
        image_index: ``(K,)`` image of each RoI (column 0 of ``rois``).
        background: the background column(s) of ``teacher_cls``.
        num: RoIs kept per image (all of an image's when it has fewer).
    """
    p_bg = teacher_cls.softmax(dim=1)[:, background.to(teacher_cls.device)].sum(dim=1)
    keep = []
    for image in image_index.unique():
        inds = (image_index == image).nonzero(as_tuple=True)[0]
        keep.append(inds[p_bg[inds].argsort()[:num]])
    return torch.cat(keep) if keep else image_index.new_zeros(0, dtype=torch.long)


def unbiased_roi_distillation_loss(student_cls: Tensor, teacher_cls: Tensor,
                                   student_old: Tensor, student_bg_new: Tensor,
                                   teacher_old: Tensor, teacher_bg: Tensor) -> Tensor:
    """MMA's unbiased knowledge distillation of the RoI classifier.

    The teacher's softmax over its old classes and background is the target; the
    student's probability of "background" is that of its background *plus its new
    classes* (an object the teacher calls background may be a new one), its old classes'
    are their own. The loss is the KL divergence of the student's from the teacher's,
    averaged over RoIs: zero when the student's grouped probabilities equal the teacher's,
    and blind, like the teacher, to how the student splits background and new classes.

    Args:
        student_cls: ``(K, C_s)`` student RoI logits, every column.
        teacher_cls: ``(K, C_t)`` teacher RoI logits, every column.
        student_old, teacher_old: the old classes' columns, class by class in the same
            order in both.
        student_bg_new: the student's background and new-class columns.
        teacher_bg: the teacher's background column(s).

    Raises:
        ValueError: the two sides have different RoI or old-class counts.
    """
    if student_cls.shape[0] != teacher_cls.shape[0] or len(student_old) != len(teacher_old):
        raise ValueError(f'unbiased RoI distillation: {student_cls.shape[0]} student RoIs with '
                         f'{len(student_old)} old classes against {teacher_cls.shape[0]} '
                         f'teacher RoIs with {len(teacher_old)}; both heads must score the '
                         'same RoIs with the same old classes')
    if not student_cls.numel():
        return student_cls.sum() * 0  # a batch without RoIs: a zero that keeps the graph
    device = student_cls.device
    log_s = student_cls.log_softmax(dim=1)
    log_s = torch.cat([log_s[:, student_old.to(device)],
                       log_s[:, student_bg_new.to(device)].logsumexp(dim=1, keepdim=True)], 1)
    log_t = teacher_cls.detach().log_softmax(dim=1)
    log_t = torch.cat([log_t[:, teacher_old.to(log_t.device)],
                       log_t[:, teacher_bg.to(log_t.device)].logsumexp(dim=1, keepdim=True)],
                      1).to(device)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1).mean()


def roi_distillation_loss(student_cls: Optional[Tensor], teacher_cls: Optional[Tensor],
                          student_reg: Optional[Tensor] = None,
                          teacher_reg: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """ILOD's losses on RoIs both heads scored, old-class columns already selected.

    ``loss_distill_roi_cls`` (unless ``student_cls`` is None, when the classifier has its
    own loss): mean squared difference of the logits, each RoI's logits minus their mean;
    ``loss_distill_roi_bbox`` (with deltas): mean squared difference.

    Raises:
        ValueError: the two sides differ in shape.
    """
    pairs = {} if student_cls is None else dict(cls=(student_cls, teacher_cls))
    if student_reg is not None:
        pairs['bbox'] = (student_reg, teacher_reg)
    out = {}
    for name, (s, t) in pairs.items():
        if t is None or s.shape != t.shape:
            raise ValueError(f'RoI distillation: the student\'s old-class {name} outputs are '
                             f'{tuple(s.shape)}, the teacher\'s '
                             f'{None if t is None else tuple(t.shape)}; both heads must score '
                             'the same RoIs with the same old classes')
        if name == 'cls':
            s, t = s - s.mean(dim=1, keepdim=True), t - t.mean(dim=1, keepdim=True)
        # a batch without RoIs: a zero that keeps the graph
        out[f'loss_distill_roi_{name}'] = ((s - t.detach()) ** 2).mean() if s.numel() \
            else s.sum() * 0
    return out


class RoIDistiller:
    """The teacher's RoI head on the student's sampled RoIs (module docstring).

    Hooks record the teacher's features (its ``neck``, else ``backbone``, output) in the
    teacher's pass over the batch, and the student's sampled RoIs and box-head outputs in
    its training pass; :meth:`loss` then runs the teacher's RoI box branch on those RoIs.

    Args:
        student, teacher: two-stage detectors (:func:`roi_distillable`), the teacher with
            the old classes, the student with old + new.
        num_old: old classes (the first rows of the student's heads).
        num_rois: RoIs distilled per image.
        bbox: distil the old classes' box deltas too (needs class-specific ``fc_reg``).
        cls_loss: ``'unbiased'`` (MMA's KL with the teacher's background spread over the
            student's background and new classes: :func:`unbiased_roi_distillation_loss`)
            or ``'l2'`` (ILOD's mean-subtracted L2 on the old-class and background logits).
        new_iou: RoIs overlapping a labelled new-class box (:meth:`loss`'s ``new_boxes``)
            by more than this IoU are not distilled; None distils them too.

    Raises:
        ValueError: a model without such a RoI head, or an unknown ``cls_loss``.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, num_old: int,
                 num_rois: int = 64, bbox: bool = True, cls_loss: str = 'unbiased',
                 new_iou: Optional[float] = 0.5) -> None:
        if cls_loss not in ROI_CLS_LOSSES:
            raise ValueError(f'RoI distillation: the classifier loss is one of '
                             f'{ROI_CLS_LOSSES}, got {cls_loss!r}')
        for role, model in (('student', student), ('teacher', teacher)):
            if not roi_distillable(model):
                raise ValueError(f'RoI distillation: the {role} {type(model).__name__} has no '
                                 'single box branch (roi_head.bbox_roi_extractor, '
                                 'roi_head.bbox_head with fc_cls); set '
                                 'finetune.incremental.distill_roi=False')
        s_rows, t_rows = find_class_rows(student), find_class_rows(teacher)
        self.cls_rows = (old_class_rows(s_rows[ROI_CLS], num_old),
                         old_class_rows(t_rows[ROI_CLS], num_old))
        self.background = t_rows[ROI_CLS].background_rows()
        s_cls_rows = s_rows[ROI_CLS]
        # unbiased: the old classes one by one, then background + new in one group
        self.unbiased = None if cls_loss == 'l2' else (
            torch.cat(rows_of_classes(s_cls_rows, 0, num_old)),
            torch.cat([s_cls_rows.background_rows()] +
                      rows_of_classes(s_cls_rows, num_old, s_cls_rows.num_classes)),
            torch.cat(rows_of_classes(t_rows[ROI_CLS], 0, num_old)))
        if len(self.background) == 0:
            raise ValueError('RoI distillation picks the RoIs by the teacher\'s background '
                             f'score, but its fc_cls has none ({t_rows[ROI_CLS].describe()}); '
                             'set finetune.incremental.distill_roi=False')
        self.reg_rows = None
        if bbox and ROI_REG in s_rows and ROI_REG in t_rows:
            self.reg_rows = (old_class_rows(s_rows[ROI_REG], num_old),
                             old_class_rows(t_rows[ROI_REG], num_old))
        self.teacher, self.num_rois, self.new_iou = teacher, num_rois, new_iou
        self.rois: List[Tensor] = []
        self.student_out: List[Tuple[Tensor, Optional[Tensor]]] = []
        self.teacher_feats = None
        feats = teacher.neck if getattr(teacher, 'neck', None) is not None else teacher.backbone
        self.handles = [
            feats.register_forward_hook(self._keep_teacher_feats),
            student.roi_head.bbox_roi_extractor.register_forward_hook(self._keep_rois),
            student.roi_head.bbox_head.register_forward_hook(self._keep_student_out)]

    def _keep_teacher_feats(self, module, inputs, output) -> None:
        self.teacher_feats = output

    def _keep_rois(self, module, inputs, output) -> None:
        if module.training:  # not the student's validation passes
            self.rois.append(inputs[1])

    def _keep_student_out(self, module, inputs, output) -> None:
        if module.training:
            self.student_out.append(output)

    def clear(self) -> None:
        """Forget the student's outputs (before its next training pass)."""
        self.rois.clear()
        self.student_out.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def loss(self, new_boxes: Optional[Sequence[Tensor]] = None) -> Dict[str, Tensor]:
        """ILOD's losses on the student's first box-branch pass since :meth:`clear`.

        Args:
            new_boxes: per image of the batch, its labelled new-class boxes (batch
                pixels); with ``new_iou``, the RoIs on them are not distilled.

        Raises:
            ValueError: the student's box branch did not run, or the teacher saw no batch.
        """
        if not self.rois or not self.student_out:
            raise ValueError('RoI distillation: the student\'s RoI box head did not run in '
                             'this training pass')
        if self.teacher_feats is None:
            raise ValueError('RoI distillation: the teacher has not seen the batch (its '
                             'features are missing); run the teacher on it first')
        rois, (s_cls, s_reg) = self.rois[0], self.student_out[0]
        head = self.teacher.roi_head
        t_device = next(head.bbox_head.parameters()).device
        with torch.no_grad():
            t_cls, t_reg = head.bbox_head(head.bbox_roi_extractor(self.teacher_feats,
                                                                  rois.to(t_device)))
        keep = least_background(t_cls, rois[:, 0].to(t_device), self.background, self.num_rois)
        keep_cls = keep  # the classifier's RoIs: not those on labelled new-class objects
        if new_boxes is not None and self.new_iou is not None:
            keep_cls = keep[~rois_on_boxes(rois, new_boxes, self.new_iou).to(t_device)[keep]]
        student_reg = teacher_reg = None
        if self.reg_rows is not None and s_reg is not None and t_reg is not None:
            student_reg = _rows_of(s_reg, keep, self.reg_rows[0])
            teacher_reg = _rows_of(t_reg, keep, self.reg_rows[1]).to(s_reg.device)
        if self.unbiased is None:
            return roi_distillation_loss(
                _rows_of(s_cls, keep_cls, self.cls_rows[0]),
                _rows_of(t_cls, keep_cls, self.cls_rows[1]).to(s_cls.device),
                student_reg, teacher_reg)
        s_old, s_bg_new, t_old = self.unbiased
        return {'loss_distill_roi_cls': unbiased_roi_distillation_loss(
                    s_cls[keep_cls.to(s_cls.device)], t_cls[keep_cls], s_old, s_bg_new, t_old,
                    self.background),
                **roi_distillation_loss(None, None, student_reg, teacher_reg)}


def _rows_of(outputs: Tensor, rois: Tensor, columns: Tensor) -> Tensor:
    """``outputs[rois][:, columns]`` on ``outputs``' device."""
    return outputs[rois.to(outputs.device)][:, columns.to(outputs.device)]
