"""RepeatDataset, ConcatDataset and ClassBalancedDataset in mmft's DATASETS.

They are MMEngine's wrappers; the only change is that a wrapped dataset given as a config
is built in scope ``'mmft'``. MMEngine builds it through its root registry, which finds
mmft's datasets only while the default scope is ``'mmft'``. (Configs, not built datasets:
MMEngine's wrappers accept a built ``BaseDataset`` but not a built wrapper.)
"""
from typing import List, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.dataset import ClassBalancedDataset as _ClassBalancedDataset
from mmengine.dataset import ConcatDataset as _ConcatDataset
from mmengine.dataset import RepeatDataset as _RepeatDataset

from mmft.registry import DATASETS
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
