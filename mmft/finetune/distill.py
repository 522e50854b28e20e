"""Logit distillation of the old classes, for ``finetune.incremental.distill``.

The teacher (frozen pretrained model) and the student see the same batch. The student's
dense class outputs at the old classes' channels are pulled towards the teacher's by an L2
loss on the logits (Shmelkov et al., 2017, "Incremental Learning of Object Detectors
without Catastrophic Forgetting", ILOD, distils the classifier logits with L2; Peng et al.,
2020, "Faster ILOD", adds the RPN):

- **which outputs**: every layer whose class rows the heads declare (``class_rows()``,
  one row per class: classifiers, not box regressors) and whose output is a dense map
  ``(B, C, H, W)``, i.e. one-stage class outputs (RetinaNet's ``retina_cls``, FCOS, ATSS,
  SSD's ``cls_convs.i``, the class rows of YOLOv3's ``convs_pred.i``), plus the RPN's
  objectness ``rpn_head.rpn_cls`` of two-stage detectors. Channel ``k`` of a conv's output
  is row ``k`` of its weight, so the declared rows pick the old classes' channels (and the
  background channel of softmax layouts) in both models;
- **not** the RoI classifier: the student's and the teacher's RoIs differ (each has its own
  proposals), so their RoI logits are not comparable without running both on one set of
  proposals; the old classes of RoI heads are kept by the pseudo-labels instead.

Outputs are caught with forward hooks, so no head changes; the loss is added to the
student's ``loss()`` dict as ``loss_distill``.
"""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from mmft.structures.class_rows import find_class_rows

#: a two-stage detector's class-free dense output distilled too (Faster ILOD)
RPN_OBJECTNESS = 'rpn_head.rpn_cls'


def distilled_channels(model: nn.Module, num_classes: int
                       ) -> Dict[str, Optional[Tensor]]:
    """``module path -> output channels`` to distil (None: all of them).

    Declared one-row-per-class layers outside ``roi_head`` give the rows of classes ``0 .. num_classes - 1``
    and their background rows; ``rpn_head.rpn_cls`` gives all its channels.
    """
    out: Dict[str, Optional[Tensor]] = {}
    for key, rows in find_class_rows(model).items():
        module, _, name = key.rpartition('.')
        # RoI heads (classifier, mask logits) see each model's own proposals: not comparable
        if name != 'weight' or rows.per_class != 1 or module.startswith('roi_head.'):
            continue
        old = [rows.rows_of(i) for i in range(min(num_classes, rows.num_classes))]
        out[module] = torch.cat(old + [rows.background_rows()]).sort().values
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
            diffs.append(((s - t.detach()) ** 2).mean())
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
