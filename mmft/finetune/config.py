"""The ``finetune = dict(...)`` config section, and ``num_classes`` taken from the data.

Every option also works from the command line, e.g.
``--cfg-options finetune.exclude="['mask_rcnn']" finetune.freeze="['backbone']"``.
"""
import re
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

CHECKPOINT_TYPES = ('auto', 'detection', 'classification')
#: ``finetune.incremental.distill_roi_loss`` (:class:`mmft.finetune.distill.RoIDistiller`)
ROI_CLS_LOSSES = ('l2', 'unbiased')


@dataclass
class UnfreezeStage:
    """Make ``patterns`` trainable at iteration ``iter`` or epoch ``epoch`` (0-based).

    In a config: ``dict(patterns=['neck'], iter=500)``; on the command line, where
    MMEngine's DictAction cannot parse dicts inside lists, the string
    ``'neck@iter500'`` or ``'backbone.layer4@epoch1'``.
    """
    patterns: List[str]
    iter: Optional[int] = None
    epoch: Optional[int] = None

    @classmethod
    def parse(cls, stage: Union[str, Mapping[str, Any], 'UnfreezeStage']) -> 'UnfreezeStage':
        if isinstance(stage, UnfreezeStage):
            return stage
        if isinstance(stage, Mapping):
            unknown = sorted(set(stage) - {'patterns', 'iter', 'epoch'})
            if unknown:
                raise ValueError(f'finetune.unfreeze stage {dict(stage)}: unknown key(s) '
                                 f"{unknown}; a stage has 'patterns' and 'iter' or 'epoch'")
            return cls(**stage)
        match = re.fullmatch(r'(?P<pattern>.+)@(?P<unit>iter|epoch)(?P<at>\d+)', str(stage))
        if match is None:
            raise ValueError(f"finetune.unfreeze entry {stage!r}: write dict(patterns=[...], "
                             "iter=N) or epoch=N, or the string 'PATTERN@iterN' / "
                             "'PATTERN@epochN'")
        return cls([match['pattern']], **{match['unit']: int(match['at'])})

    def reached(self, iteration: int, epoch: int) -> bool:
        """Whether the stage's time has come, before iteration ``iteration`` (0-based)
        of epoch ``epoch``."""
        return iteration >= self.iter if self.iter is not None else epoch >= self.epoch

    def __post_init__(self) -> None:
        if (self.iter is None) == (self.epoch is None):
            raise ValueError(f'finetune.unfreeze stage {self.patterns}: give exactly one of '
                             f'iter= or epoch=, got iter={self.iter}, epoch={self.epoch}')
        if isinstance(self.patterns, str):
            self.patterns = [self.patterns]


@dataclass
class IncrementalOptions:
    """``finetune.incremental``: add the dataset's classes to the checkpoint's, keep the old.

    ``incremental=True`` takes the defaults; a dict sets them. The head gets the
    checkpoint's classes followed by the dataset's classes that are new (same name: the
    same class); the frozen pretrained model is the teacher of the old classes.

    Attributes:
        enabled: incremental fine-tuning on or off.
        pseudo_labels: the teacher's confident old-class detections join each training
            image's gt, so unlabelled old objects are not trained as background.
        score_thr: teacher score at or above which a detection becomes a pseudo-label.
        iou_thr: a detection overlapping a labelled box by more than this IoU is dropped
            (the labelled object wins).
        distill: distillation of the teacher's old-class outputs at all (the switch of
            the two parts below; see :mod:`mmft.finetune.distill`).
        distill_dense: L2 on the old-class logits of the dense class outputs (one-stage
            heads) and the RPN objectness: ``loss_distill``.
        distill_weight: weight of ``loss_distill``.
        distill_roi: two-stage detectors (a ``StandardRoIHead``): the teacher's RoI head
            scores the student's sampled RoIs, and the old-class (and background) RoI
            logits are distilled, mean-subtracted L2: ``loss_distill_roi_cls``.
        distill_roi_bbox: also the old classes' RoI box deltas: ``loss_distill_roi_bbox``.
        distill_roi_num: RoIs per image distilled: those the teacher finds least
            background.
        distill_roi_weight: weight of the RoI distillation losses.
        distill_roi_loss: the RoI classifier's distillation loss: ``'l2'`` (ILOD's
            mean-subtracted L2 on the old-class and background logits) or ``'unbiased'``
            (MMA's KL divergence where the teacher's background is the student's
            background or any new class).
        distill_roi_new_iou: RoIs overlapping a labelled new-class box by more than this
            IoU are not distilled: the teacher never learnt the new classes, so what it
            says of them contradicts the labels; None distils them too.
    """
    enabled: bool = False
    pseudo_labels: bool = True
    score_thr: float = 0.5
    iou_thr: float = 0.5
    distill: bool = True
    distill_dense: bool = True
    distill_weight: float = 1.0
    distill_roi: bool = True
    distill_roi_bbox: bool = True
    distill_roi_num: int = 64
    distill_roi_weight: float = 1.0
    distill_roi_loss: str = 'unbiased'
    distill_roi_new_iou: Optional[float] = 0.5

    @classmethod
    def parse(cls, value: Any) -> 'IncrementalOptions':
        if isinstance(value, IncrementalOptions):
            return value
        if value is None or isinstance(value, bool):
            return cls(enabled=bool(value))
        if not isinstance(value, Mapping):
            raise ValueError(f'finetune.incremental must be True, False or a dict of '
                             f'{[f.name for f in fields(cls)]}, got {value!r}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f'unknown finetune.incremental option(s) {unknown}; valid '
                             f'options: {sorted(known)}')
        self = cls(**{'enabled': True, **value})
        for name in ('score_thr', 'iou_thr', 'distill_roi_new_iou'):
            if name == 'distill_roi_new_iou' and self.distill_roi_new_iou is None:
                continue
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f'finetune.incremental.{name} is in [0, 1], got '
                                 f'{getattr(self, name)!r}')
        for name in ('distill_weight', 'distill_roi_weight'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'finetune.incremental.{name} must be >= 0, got '
                                 f'{getattr(self, name)!r}')
        if self.distill_roi_loss not in ROI_CLS_LOSSES:
            raise ValueError(f'finetune.incremental.distill_roi_loss is one of '
                             f'{ROI_CLS_LOSSES}, got {self.distill_roi_loss!r}')
        if isinstance(self.distill_roi_num, bool) or not isinstance(self.distill_roi_num, int) \
                or self.distill_roi_num < 1:
            raise ValueError(f'finetune.incremental.distill_roi_num is the RoIs per image to '
                             f'distil, an int >= 1; got {self.distill_roi_num!r}')
        return self


@dataclass
class FinetuneConfig:
    """Options of the ``finetune`` section (all optional).

    Attributes:
        checkpoint_type: 'detection' restores everything that fits;
            'classification' restores only the backbone (keys with or without
            'backbone.'); 'auto' (default) is 'classification' for ImageNet
            checkpoints (recognised by their keys) and 'detection' otherwise.
        source_format: 'auto', 'mmft', 'torchvision', 'detectron2', 'caffe'.
        exclude: keys never taken from the checkpoint: wildcards, module
            paths, 're:' regexes or presets ('faster_rcnn', 'mask_rcnn', ...).
        class_transfer: copy head rows of classes shared by name.
        source_classes: class names of a checkpoint that does not carry them.
        class_mapping: new class -> checkpoint class, beyond names and synonyms.
        synonyms: use the built-in synonyms (rider -> person, ...).
        strict_backbone: a suspicious shape mismatch or a missing backbone
            key is an error.
        min_loaded: fail when less than this fraction of the model weights in
            scope was restored.
        min_backbone_loaded: fail when less than this fraction of the backbone's
            weights was restored (default 0.5: a backbone that trains from its
            initialisation is almost always the wrong checkpoint); 0 allows any load,
            even one that restores nothing.
        freeze: parameters to freeze before training.
        norm_eval: keep fully frozen BatchNorm layers in eval mode.
        unfreeze: stages of gradual unfreezing (see :class:`UnfreezeStage`).
        incremental: keep the checkpoint's classes and add the dataset's (see
            :class:`IncrementalOptions` and :mod:`mmft.finetune.incremental`).
    """
    checkpoint_type: str = 'auto'
    source_format: str = 'auto'
    exclude: List[str] = field(default_factory=list)
    class_transfer: bool = True
    source_classes: Optional[Tuple[str, ...]] = None
    class_mapping: Dict[str, str] = field(default_factory=dict)
    synonyms: bool = True
    strict_backbone: bool = False
    min_loaded: Optional[float] = None
    min_backbone_loaded: Optional[float] = 0.5
    freeze: List[str] = field(default_factory=list)
    norm_eval: bool = True
    unfreeze: List[UnfreezeStage] = field(default_factory=list)
    incremental: IncrementalOptions = field(default_factory=IncrementalOptions)

    @classmethod
    def from_cfg(cls, cfg: Optional[Mapping[str, Any]]) -> 'FinetuneConfig':
        """Validate a ``finetune`` dict (None -> defaults).

        Raises:
            ValueError: an unknown option (names the valid ones) or a bad value.
        """
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f'unknown finetune option(s) {unknown}; valid options: '
                             f'{sorted(known)}')
        if isinstance(cfg.get('exclude'), str):
            cfg['exclude'] = [cfg['exclude']]
        if isinstance(cfg.get('freeze'), str):
            cfg['freeze'] = [cfg['freeze']]
        cfg['exclude'] = list(cfg.get('exclude') or [])
        stages = cfg.get('unfreeze') or []
        cfg['unfreeze'] = [UnfreezeStage.parse(s)
                           for s in ([stages] if isinstance(stages, str) else stages)]
        if cfg.get('source_classes') is not None:
            cfg['source_classes'] = check_class_tuple(cfg['source_classes'],
                                                      'finetune.source_classes')
        cfg['incremental'] = IncrementalOptions.parse(cfg.get('incremental'))
        self = cls(**cfg)
        if self.checkpoint_type not in CHECKPOINT_TYPES:
            raise ValueError(f'finetune.checkpoint_type must be one of {CHECKPOINT_TYPES}, '
                             f'got {self.checkpoint_type!r}')
        for name in ('min_loaded', 'min_backbone_loaded'):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(f'finetune.{name} is a fraction in [0, 1], got {value!r}')
        return self


def check_class_tuple(classes: Any, where: str) -> Tuple[str, ...]:
    """``classes`` as a tuple of str, catching the one-class trap ``('a')``.

    Raises:
        TypeError: ``classes`` is a str (``('a')`` is the str 'a', not a tuple)
            or not a sequence of str.
    """
    if isinstance(classes, str):
        raise TypeError(f"{where} is the string {classes!r}, not a tuple of class names: "
                        f"write ({classes!r},) with a trailing comma for one class")
    if not isinstance(classes, Sequence) or not all(isinstance(c, str) for c in classes):
        raise TypeError(f'{where} must be a tuple of class-name strings, got {classes!r}')
    return tuple(classes)


def dataset_classes(dataset_cfg: Mapping[str, Any]) -> Optional[Tuple[str, ...]]:
    """The class names a dataset config will have, without building it.

    Wrappers (RepeatDataset, ClassBalancedDataset, ConcatDataset) are looked
    through. ``metainfo.classes`` wins; otherwise the dataset type's
    ``METAINFO['classes']``. None when neither is known.
    """
    if dataset_cfg is None:
        return None
    if 'dataset' in dataset_cfg:
        return dataset_classes(dataset_cfg['dataset'])
    if 'datasets' in dataset_cfg:
        found = [dataset_classes(d) for d in dataset_cfg['datasets']]
        known = [c for c in found if c is not None]
        if known and any(c != known[0] for c in known):
            raise ValueError(f'ConcatDataset parts have different classes: {known}; give '
                             'each part the same metainfo=dict(classes=...)')
        return known[0] if known else None
    metainfo = dataset_cfg.get('metainfo') or {}
    if metainfo.get('classes') is not None:
        return check_class_tuple(metainfo['classes'], 'dataset metainfo.classes')
    dataset_type = dataset_cfg.get('type')
    if isinstance(dataset_type, str):
        from mmft.registry import DATASETS
        dataset_type = DATASETS.get(dataset_type)
    classes = getattr(dataset_type, 'METAINFO', {}).get('classes')
    return tuple(classes) if classes is not None else None


def _follows_dataset(head_cfg: Mapping[str, Any]) -> bool:
    """Whether a part's ``num_classes`` is the dataset's class count: true unless its
    type says otherwise (``num_classes_from_dataset = False``, e.g. RPN's objectness)."""
    head_type = head_cfg.get('type')
    if isinstance(head_type, str):
        from mmft.registry import MODELS
        head_type = MODELS.get(head_type)
    return getattr(head_type, 'num_classes_from_dataset', True)


def class_dependent_heads(model_cfg: Mapping[str, Any], path: str = 'model'
                          ) -> List[Tuple[str, Mapping[str, Any]]]:
    """``(path, head cfg)`` of every part whose ``num_classes`` follows the dataset."""
    found: List[Tuple[str, Mapping[str, Any]]] = []
    items: Union[Sequence, Mapping]
    items = model_cfg.items() if isinstance(model_cfg, Mapping) else enumerate(model_cfg)
    for key, value in items:
        child = f'{path}.{key}'
        if isinstance(value, Mapping):
            if 'num_classes' in value and _follows_dataset(value):
                found.append((child, value))
            found.extend(class_dependent_heads(value, child))
        elif isinstance(value, (list, tuple)):
            found.extend(class_dependent_heads(value, child))
    return found


def resolve_num_classes(cfg: Any) -> Optional[Tuple[str, ...]]:
    """Set ``num_classes='auto'`` heads from the data and check the others agree.

    Looks at the train dataset, else the test then val dataset. Mutates ``cfg.model``.

    Returns:
        The dataset's classes, or None when they can't be known from the config.

    Raises:
        ValueError: a head's num_classes differs from the number of classes
            (the message names the head, both numbers and the class list), or
            'auto' is used but the classes are unknown.
    """
    classes = None
    for loader in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        dataset_cfg = (cfg.get(loader) or {}).get('dataset')
        if dataset_cfg is not None:
            classes = dataset_classes(dataset_cfg)
            if classes is not None:
                break
    for path, head in class_dependent_heads(cfg.get('model') or {}):
        num = head['num_classes']
        if num == 'auto':
            if classes is None:
                raise ValueError(f"{path}.num_classes='auto' but the dataset's classes are "
                                 'unknown: give the dataset metainfo=dict(classes=(...))')
            head['num_classes'] = len(classes)
        elif classes is not None and num != len(classes):
            raise ValueError(
                f'{path}.num_classes={num} but the dataset has {len(classes)} classes '
                f'{list(classes)}. Set {path}.num_classes={len(classes)} (or \'auto\'), or '
                'give the dataset metainfo=dict(classes=(...)) with the classes to train')
    return classes
