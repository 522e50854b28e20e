"""The finetune section is validated; num_classes comes from the data or must agree with it."""
import pytest
from mmengine.config import Config

from mmft.finetune.config import (FinetuneConfig, check_class_tuple, dataset_classes,
                                  resolve_num_classes)


def test_defaults_and_presets():
    cfg = FinetuneConfig.from_cfg(None)
    assert cfg.checkpoint_type == 'auto' and cfg.class_transfer and cfg.exclude == []
    cfg = FinetuneConfig.from_cfg(dict(exclude='mask_rcnn', freeze='backbone',
                                       unfreeze=[dict(patterns='backbone', iter=10)]))
    assert cfg.exclude == ['mask_rcnn']  # presets expand where they are matched
    assert cfg.freeze == ['backbone'] and cfg.unfreeze[0].patterns == ['backbone']
    # the command-line form: DictAction cannot parse dicts inside lists
    stages = FinetuneConfig.from_cfg(dict(unfreeze=['neck@iter500', 'backbone.layer4@epoch2']))
    assert [(s.patterns, s.iter, s.epoch) for s in stages.unfreeze] == [
        (['neck'], 500, None), (['backbone.layer4'], None, 2)]


@pytest.mark.parametrize('bad, message', [
    (dict(exlude=['x']), r"unknown finetune option\(s\) \['exlude'\]; valid options: .*'exclude'"),
    (dict(checkpoint_type='imagenet'), 'checkpoint_type must be one of'),
    (dict(min_loaded=50), r'fraction in \[0, 1\]'),
    (dict(unfreeze=[dict(patterns=['x'])]), 'exactly one of iter= or epoch='),
    (dict(unfreeze=['neck@500']), "'PATTERN@iterN'"),
    (dict(unfreeze=[dict(patterns=['x'], iters=5)]), r"unknown key\(s\) \['iters'\]"),
    (dict(source_classes='car'), r"write \('car',\)"),
])
def test_bad_options_are_named(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        FinetuneConfig.from_cfg(bad)


def test_one_class_tuple_trap():
    assert check_class_tuple(('a',), 'x') == ('a',)
    with pytest.raises(TypeError, match=r"metainfo.classes is the string 'a'.*\('a',\)"):
        check_class_tuple(('a'), 'metainfo.classes')


def _cfg(num_classes, classes=('car', 'bus'), wrapped=False):
    dataset = dict(type='CocoDataset', metainfo=dict(classes=classes))
    if wrapped:
        dataset = dict(type='RepeatDataset', times=2, dataset=dataset)
    return Config(dict(
        model=dict(type='MaskRCNN', rpn_head=dict(type='RPNHead', num_classes=1),
                   roi_head=dict(bbox_head=dict(num_classes=num_classes),
                                 mask_head=dict(num_classes=num_classes))),
        train_dataloader=dict(dataset=dataset)))


def test_auto_num_classes_from_the_dataset_through_wrappers():
    cfg = _cfg('auto', wrapped=True)
    assert resolve_num_classes(cfg) == ('car', 'bus')
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    assert cfg.model.roi_head.mask_head.num_classes == 2
    assert cfg.model.rpn_head.num_classes == 1


def test_head_and_dataset_disagree():
    with pytest.raises(ValueError, match=r"model.roi_head.bbox_head.num_classes=80 but the "
                                         r"dataset has 2 classes \['car', 'bus'\]"):
        resolve_num_classes(_cfg(80))


def test_auto_without_known_classes():
    cfg = Config(dict(model=dict(roi_head=dict(bbox_head=dict(num_classes='auto'))),
                      train_dataloader=dict(dataset=dict(type=object))))
    with pytest.raises(ValueError, match="num_classes='auto' but the dataset's classes"):
        resolve_num_classes(cfg)


def test_concat_parts_must_agree():
    parts = [dict(type='X', metainfo=dict(classes=('a',))),
             dict(type='X', metainfo=dict(classes=('b',)))]
    with pytest.raises(ValueError, match='ConcatDataset parts have different classes'):
        dataset_classes(dict(type='ConcatDataset', datasets=parts))
