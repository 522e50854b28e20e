"""Transforms that run other transforms (mmcv 2.x's names and arguments): ``Compose``,
``RandomChoice``, ``RandomApply`` and the test-time augmentation ``TestTimeAug``.

Each wrapped entry is a transform config (built in mmft's TRANSFORMS, then MMEngine's), a
built transform, or a list of them run in order. A step that returns None stops its
sequence and the wrapper returns None too, so the dataset's retry logic still sees it.
"""
import copy
from itertools import product
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from mmft.registry import TRANSFORMS
from .base import BaseTransform

TransformLike = Union[dict, Callable]


def _build(transform: TransformLike, owner: str) -> Callable:
    if isinstance(transform, dict):
        return TRANSFORMS.build(transform)
    if callable(transform):
        return transform
    raise TypeError(f'{owner}: each transform must be a config dict or a callable, got '
                    f'{transform!r}')


@TRANSFORMS.register_module()
class Compose(BaseTransform):
    """Run ``transforms`` in order; stop with None as soon as one returns None.

    Args:
        transforms: Transform configs or callables; a single one is accepted too.
    """

    def __init__(self, transforms: Union[TransformLike, Sequence[TransformLike]]) -> None:
        if isinstance(transforms, (dict, )) or callable(transforms):
            transforms = [transforms]
        if not isinstance(transforms, (list, tuple)):
            raise TypeError(f'Compose transforms must be a list of transform configs, got '
                            f'{transforms!r}')
        self.transforms = [_build(t, 'Compose') for t in transforms]

    def transform(self, results: dict) -> Optional[dict]:
        for step in self.transforms:
            results = step(results)
            if results is None:
                return None
        return results

    def __iter__(self):
        return iter(self.transforms)


def _as_sequence(transform: Union[TransformLike, Sequence[TransformLike]], owner: str) -> Compose:
    """One alternative of a wrapper: a config, a callable or a list of them."""
    if isinstance(transform, (list, tuple)):
        return Compose(list(transform))
    return Compose([_build(transform, owner)])


@TRANSFORMS.register_module()
class RandomChoice(BaseTransform):
    """Run one of ``transforms``, chosen at random.

    Args:
        transforms: Alternatives; each a transform config or a list of them.
        prob: Probability of each alternative (sums to 1); uniform when None.
    """

    def __init__(self, transforms: List[Union[TransformLike, List[TransformLike]]],
                 prob: Optional[List[float]] = None) -> None:
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ValueError(f'RandomChoice transforms must be a non-empty list of '
                             f'alternatives, got {transforms!r}')
        if prob is not None:
            if len(prob) != len(transforms):
                raise ValueError(f'RandomChoice prob={list(prob)} has {len(prob)} entries for '
                                 f'{len(transforms)} transforms; give one per alternative')
            if min(prob) < 0 or abs(sum(prob) - 1) > 1e-6:
                raise ValueError(f'RandomChoice prob={list(prob)} must be >= 0 and sum to 1')
        self.prob = prob
        self.transforms = [_as_sequence(t, 'RandomChoice') for t in transforms]

    def random_pipeline_index(self) -> int:
        """Index of the alternative to run this time."""
        return int(np.random.choice(len(self.transforms), p=self.prob))

    def transform(self, results: dict) -> Optional[dict]:
        return self.transforms[self.random_pipeline_index()](results)


@TRANSFORMS.register_module()
class RandomApply(BaseTransform):
    """Run ``transforms`` (in order) with probability ``prob``, else leave the sample as is.

    Args:
        transforms: A transform config or a list of them.
        prob: Probability of running them.
    """

    def __init__(self, transforms: Union[TransformLike, List[TransformLike]],
                 prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomApply prob={prob} must be in [0, 1]')
        self.prob = prob
        self.transforms = _as_sequence(transforms, 'RandomApply')

    def random_apply(self) -> bool:
        """Whether to run the transforms this time."""
        return bool(np.random.rand() < self.prob)

    def transform(self, results: dict) -> Optional[dict]:
        return self.transforms(results) if self.random_apply() else results


@TRANSFORMS.register_module()
class TestTimeAug(BaseTransform):
    """Make several views of one test sample: every combination of one transform per stage.

    ``transforms=[[Resize(a), Resize(b)], [RandomFlip(prob=1.), RandomFlip(prob=0.)],
    [PackDetInputs(...)]]`` makes 4 views. The output is a dict of lists, one entry per
    view (``dict(inputs=[...], data_samples=[...])`` after PackDetInputs); MMEngine's
    ``pseudo_collate`` turns a batch of them into the views-first layout that
    ``DetTTAModel`` takes.

    Args:
        transforms: Stages; each a list of alternative transform configs (an alternative
            may itself be a list run in order).
        allow_failed: Drop views whose transforms return None; otherwise that is an error.
    """

    def __init__(self, transforms: List[List[TransformLike]], allow_failed: bool = False) -> None:
        if not isinstance(transforms, (list, tuple)) or not transforms or \
                not all(isinstance(stage, (list, tuple)) and stage for stage in transforms):
            raise ValueError('TestTimeAug transforms must be a list of stages, each a non-empty '
                             'list of alternatives, e.g. [[dict(type="RandomFlip", prob=1.), '
                             f'dict(type="RandomFlip", prob=0.)], [dict(type="PackDetInputs")]]; '
                             f'got {transforms!r}')
        self.allow_failed = allow_failed
        stages = [[_as_sequence(alt, 'TestTimeAug') for alt in stage] for stage in transforms]
        self.subroutines = [Compose(list(chain)) for chain in product(*stages)]

    def transform(self, results: dict) -> dict:
        views = []
        for index, subroutine in enumerate(self.subroutines):
            view = subroutine(copy.deepcopy(results))
            if view is None:
                if self.allow_failed:
                    continue
                raise RuntimeError(f'TestTimeAug view {index} ({subroutine.transforms}) returned '
                                   f'None for {results.get("img_path")}; fix the transforms or '
                                   'set allow_failed=True')
            views.append(view)
        if not views:
            raise RuntimeError(f'TestTimeAug: every view failed for {results.get("img_path")}')
        return {key: [view[key] for view in views] for key in views[0]}
