"""Run a trained detector on images from a script or a notebook (MMDetection 3.x's API).

    model = init_detector('configs/finetune/shapes.py', 'work_dirs/demo/transfer/iter_150.pth')
    result = inference_detector(model, 'street.jpg')    # DetDataSample
    result.pred_instances.bboxes, .labels, .scores(, .masks)

Images go through the config's test pipeline (``test_dataloader.dataset.pipeline``);
an ndarray (BGR, as OpenCV reads it) skips its first step, the file loading.
Predictions are in pixels of the original image. Class names come from the
checkpoint (``meta.dataset_meta.classes``), so ``model.dataset_meta`` names the
labels of the model that is actually loaded.
"""
import copy
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn

from mmft.finetune.config import class_dependent_heads, dataset_classes, resolve_num_classes
from mmft.checkpoint.converters.coco_classes import COCO_CLASSES
from mmft.checkpoint import read_checkpoint
from mmft.checkpoint.exact import checkpoint_classes
from mmft.finetune.load import load_checkpoint
from mmft.registry import DATASETS, MODELS
from mmft.structures import DetDataSample
from mmft.utils import register_all_modules

ImagesType = Union[str, np.ndarray, Sequence[str], Sequence[np.ndarray]]


def init_detector(config: Union[str, Path, Config],
                  checkpoint: Optional[str] = None,
                  palette: str = 'none',
                  device: str = 'cpu',
                  cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the detector of ``config`` and load ``checkpoint`` into it, in eval mode.

    Args:
        config: config file or :class:`Config`.
        checkpoint: weights (any format ``read_checkpoint`` reads); None keeps
            PyTorch's initialisation (``init_cfg`` is not applied either way).
        palette: colours for drawing, stored in ``model.dataset_meta['palette']``:
            ``'none'`` takes the test dataset's palette (random fixed colours
            without one); anything :func:`mmft.visualization.get_palette` accepts
            otherwise (``'random'``, ``'coco'``, a colour list).
        device: ``'cpu'``, ``'cuda:0'``, ...
        cfg_options: overrides merged into the config first.

    The argument order is MMDetection's: ``(config, checkpoint, palette, device, cfg_options)``.

    Returns:
        The model, with ``model.cfg`` (the config) and ``model.dataset_meta``
        (``classes`` and ``palette``).
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a file name or a Config, got {type(config).__name__}')
    config = copy.deepcopy(config)
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(config.get('default_scope', 'mmft'))
    loaded = read_checkpoint(checkpoint) if checkpoint is not None else None
    classes = None if loaded is None else checkpoint_classes(loaded)
    _resolve_auto_heads(config, classes)
    model = revert_sync_batchnorm(MODELS.build(config.model))  # SyncBN needs a process group

    test_dataset = config.get('test_dataloader', {}).get('dataset')
    if loaded is not None:
        # every tensor must fit; the checkpoint's own classes name the labels (MMDetection's
        # init_detector does the same), whatever the config's dataset says
        load_checkpoint(model, checkpoint, 'exact', loaded=loaded)
    if classes is None:
        classes = dataset_classes(test_dataset) if test_dataset is not None else None
    if classes is None:
        warnings.warn('neither the checkpoint nor the config names the classes; labels '
                      'are shown with COCO class names')
        classes = COCO_CLASSES
    if palette == 'none':
        palette = _dataset_palette(test_dataset)
    model.dataset_meta = dict(classes=tuple(classes), palette=palette)
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def _resolve_auto_heads(config: Config, classes: Optional[Sequence[str]]) -> None:
    """``num_classes='auto'`` heads get the checkpoint's class count (the weights must
    fit), else the config's dataset's, as in training."""
    auto = [head for _, head in class_dependent_heads(config.get('model') or {})
            if head['num_classes'] == 'auto']
    if auto and classes is not None:
        for head in auto:
            head['num_classes'] = len(classes)
    elif auto:
        resolve_num_classes(config)


def _dataset_palette(dataset_cfg: Optional[dict]):
    """The palette a dataset config will have, without building it; 'random' if none."""
    while dataset_cfg is not None and 'dataset' in dataset_cfg:  # Repeat/ClassBalanced
        dataset_cfg = dataset_cfg['dataset']
    if dataset_cfg is None:
        return 'random'
    palette = (dataset_cfg.get('metainfo') or {}).get('palette')
    dataset_cls = DATASETS.get(dataset_cfg['type']) if isinstance(
        dataset_cfg.get('type'), str) else dataset_cfg.get('type')
    return palette or getattr(dataset_cls, 'METAINFO', {}).get('palette') or 'random'


def _test_pipeline_cfg(cfg: Config) -> List[dict]:
    dataset = cfg.test_dataloader.dataset
    while 'pipeline' not in dataset:  # look through dataset wrappers
        if 'dataset' in dataset:
            dataset = dataset['dataset']
        elif 'datasets' in dataset:
            dataset = dataset['datasets'][0]
        else:
            raise KeyError('test_dataloader.dataset has no pipeline; the config must '
                           'say how test images are prepared')
    return copy.deepcopy(list(dataset.pipeline))


def _load_ndarray(results: dict) -> dict:
    """What LoadImageFromFile adds, for an image given as an array."""
    img = results['img']
    results.update(img_path=None, img_shape=img.shape[:2], ori_shape=img.shape[:2])
    return results


def build_test_pipeline(cfg: Config, for_arrays: bool = False) -> Callable[[dict], dict]:
    """The config's test pipeline; ``for_arrays``: its first step (file loading)
    replaced by one that takes ``results['img']``, an ndarray."""
    steps = _test_pipeline_cfg(cfg)
    return Compose([_load_ndarray] + steps[1:] if for_arrays else steps)


def inference_detector(model: nn.Module, imgs: ImagesType,
                       test_pipeline: Optional[Callable[[dict], dict]] = None
                       ) -> Union[DetDataSample, List[DetDataSample]]:
    """Detect objects in one image or a list of images.

    Args:
        model: from :func:`init_detector`.
        imgs: image file(s) or BGR uint8 array(s) ``(H, W, 3)``.
        test_pipeline: a built pipeline to use instead of the config's.

    Returns:
        A :class:`DetDataSample` with ``pred_instances`` per image; a list when
        ``imgs`` is a list or tuple.
    """
    is_batch = isinstance(imgs, (list, tuple))
    images = list(imgs) if is_batch else [imgs]
    if not images:
        return []
    if test_pipeline is None:
        test_pipeline = build_test_pipeline(model.cfg, isinstance(images[0], np.ndarray))
    results = []
    for i, img in enumerate(images):
        data = dict(img=img, img_id=i) if isinstance(img, np.ndarray) else \
            dict(img_path=str(img), img_id=i)
        packed = test_pipeline(data)
        if packed is None:
            where = data.get('img_path') or f'array {i}'
            raise ValueError(f'the test pipeline dropped {where}: '
                             f"{data.get('skip_reason', 'no reason given')}")
        batch = dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']])
        with torch.no_grad():
            results.append(model.test_step(batch)[0])
    return results if is_batch else results[0]
