"""RepeatDataset, ConcatDataset and ClassBalancedDataset in mmft's DATASETS, and
MMDetection's ``MultiImageMixDataset`` (the YOLOX wrapper that feeds Mosaic / MixUp).

The first three are MMEngine's wrappers; the only change is that a wrapped dataset given as
a config is built in scope ``'mmft'``. MMEngine builds it through its root registry, which finds
mmft's datasets only while the default scope is ``'mmft'``. (Configs, not built datasets:
MMEngine's wrappers accept a built ``BaseDataset`` but not a built wrapper.)
"""
import copy
from typing import Any, Callable, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.dataset import ClassBalancedDataset as _ClassBalancedDataset
from mmengine.dataset import ConcatDataset as _ConcatDataset
from mmengine.dataset import RepeatDataset as _RepeatDataset

from mmft.registry import DATASETS, TRANSFORMS
from .base_det_dataset import in_mmft_scope

DatasetOrCfg = Union[BaseDataset, dict]


@DATASETS.register_module()
class RepeatDataset(_RepeatDataset):
    """``dataset`` repeated ``times`` times (fewer, longer epochs)."""

    def __init__(self, dataset: DatasetOrCfg, times: int, lazy_init: bool = False) -> None:
        super().__init__(in_mmft_scope(dataset), times, lazy_init)


@DATASETS.register_module()
class ConcatDataset(_ConcatDataset):
    """``datasets`` one after the other; their metainfo must match except ``ignore_keys``."""

    def __init__(self, datasets: Sequence[DatasetOrCfg], lazy_init: bool = False,
                 ignore_keys: Union[str, List[str], None] = None) -> None:
        super().__init__([in_mmft_scope(d) for d in datasets], lazy_init, ignore_keys)


@DATASETS.register_module()
class ClassBalancedDataset(_ClassBalancedDataset):
    """Repeats images with rare classes (LVIS's repeat factor sampling)."""

    def __init__(self, dataset: DatasetOrCfg, oversample_thr: float,
                 lazy_init: bool = False) -> None:
        super().__init__(in_mmft_scope(dataset), oversample_thr, lazy_init)


@DATASETS.register_module()
class MultiImageMixDataset:
    """Runs ``pipeline`` on samples of ``dataset`` (its own pipeline loads them), feeding
    multi-image transforms their partners.

    Before a transform with ``get_indexes`` (``Mosaic``, ``MixUp``) runs, it draws indexes
    of ``dataset`` and gets those samples in ``results['mix_results']``. A transform that
    returns None is retried on a fresh copy of its input, up to ``max_refetch`` times.

    Args:
        dataset: The dataset (or its config, built in scope ``'mmft'``).
        pipeline: Transform configs.
        dynamic_scale: Removed in MMDetection 3.x; must be None (resize in the pipeline).
        skip_type_keys: Type names of the transforms to skip (YOLOXModeSwitchHook sets them
            through :meth:`update_skip_type_keys`).
        max_refetch: Tries per transform (and per partner draw) before giving up.
        lazy_init: Defer ``dataset.full_init()``.
    """

    def __init__(self, dataset: DatasetOrCfg, pipeline: Sequence[Union[dict, Callable]],
                 dynamic_scale: Optional[Any] = None,
                 skip_type_keys: Optional[Sequence[str]] = None, max_refetch: int = 15,
                 lazy_init: bool = False) -> None:
        if dynamic_scale is not None:
            raise ValueError(f'MultiImageMixDataset dynamic_scale={dynamic_scale!r} is gone (as '
                             'in MMDetection 3.x): drop it and put Resize in the pipeline')
        if not isinstance(pipeline, (list, tuple)):
            raise TypeError(f'MultiImageMixDataset pipeline must be a list of transform '
                            f'configs, got {type(pipeline).__name__}')
        self._skip_type_keys = self._check_keys(skip_type_keys)
        self.pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        if isinstance(dataset, dict):
            dataset = DATASETS.build(in_mmft_scope(dataset))
        if not isinstance(dataset, BaseDataset):
            raise TypeError(f'MultiImageMixDataset dataset must be a dataset config or a '
                            f'BaseDataset, got {type(dataset).__name__}')
        self.dataset = dataset
        self._metainfo = dataset.metainfo
        if hasattr(dataset, 'flag'):  # the group sampler's aspect-ratio flags
            self.flag = dataset.flag
        self.max_refetch = max_refetch
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @staticmethod
    def _check_keys(keys: Optional[Sequence[str]]) -> Optional[List[str]]:
        if keys is None:
            return None
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise TypeError(f'skip_type_keys must be a list of transform type names, got '
                            f'{keys!r}')
        return list(keys)

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's metainfo (a copy)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Fully initialise the wrapped dataset."""
        if not self._fully_initialized:
            self.dataset.full_init()
            self._fully_initialized = True

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's annotation of sample ``idx``."""
        self.full_init()
        return self.dataset.get_data_info(idx)

    def __len__(self) -> int:
        self.full_init()
        return len(self.dataset)

    def update_skip_type_keys(self, skip_type_keys: Sequence[str]) -> None:
        """Skip the transforms of these type names from now on (YOLOX's last epochs)."""
        self._skip_type_keys = self._check_keys(skip_type_keys)

    def _transforms(self) -> list:
        # PipelineSwitchHook may have replaced the list by a Compose
        return list(getattr(self.pipeline, 'transforms', self.pipeline))

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        results = copy.deepcopy(self.dataset[idx])
        for transform in self._transforms():
            name = type(transform).__name__
            if self._skip_type_keys is not None and name in self._skip_type_keys:
                continue
            get_indexes = getattr(transform, 'get_indexes', None)
            if get_indexes is not None:
                results['mix_results'] = self._partners(transform, name)
            for _ in range(self.max_refetch):
                out = transform(copy.deepcopy(results))
                if out is not None:
                    results = out
                    break
            else:
                raise RuntimeError(f'MultiImageMixDataset: {name} returned None '
                                   f'{self.max_refetch} times on sample {idx}; check its '
                                   'arguments (e.g. a crop that never keeps a box)')
            results.pop('mix_results', None)
        return results

    def _partners(self, transform: Callable, name: str) -> List[dict]:
        for _ in range(self.max_refetch):
            indexes = transform.get_indexes(self.dataset)
            if not isinstance(indexes, (list, tuple)):
                indexes = [indexes]
            partners = [copy.deepcopy(self.dataset[i]) for i in indexes]
            if None not in partners:
                return partners
        raise RuntimeError(f'MultiImageMixDataset: the wrapped dataset returned None for the '
                           f'partners of {name} {self.max_refetch} times; check its pipeline')
