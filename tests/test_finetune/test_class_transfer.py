"""Class rows move by name: COCO -> Cityscapes as the running example."""
import torch

from mmft.finetune.class_transfer import (RowLayout, layout_for_rows, match_classes,
                                          transfer_rows)
from mmft.finetune.converters import COCO_CLASSES

CITYSCAPES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


def test_cityscapes_classes_match_coco_by_name_and_synonym():
    matches = match_classes(CITYSCAPES, COCO_CLASSES)
    got = {m.new_name: (m.old_name, m.how) for m in matches}
    assert got['person'] == ('person', 'name')
    assert got['rider'] == ('person', 'synonym')
    assert got['motorcycle'] == ('motorcycle', 'name')
    assert all(m.old_index == COCO_CLASSES.index(m.old_name) for m in matches)


def test_voc_names_normalise_and_use_synonyms():
    matches = match_classes(('aeroplane', 'diningtable', 'Potted_Plant', 'tvmonitor', 'unicorn'),
                            COCO_CLASSES)
    assert [m.old_name for m in matches] == ['airplane', 'dining table', 'potted plant', 'tv',
                                            None]
    assert matches[-1].how == 'new'
    # and back: a COCO-named target from a VOC checkpoint
    back = match_classes(('motorcycle',), ('motorbike', 'person'))
    assert back[0].old_name == 'motorbike' and back[0].how == 'synonym'


def test_user_mapping_wins_and_is_checked():
    matches = match_classes(('lorry',), ('car', 'truck'), mapping={'lorry': 'truck'})
    assert matches[0].old_name == 'truck' and matches[0].how == 'mapping'
    import pytest
    with pytest.raises(ValueError, match="maps 'lorry' to 'van', which is not a checkpoint"):
        match_classes(('lorry',), ('car',), mapping={'lorry': 'van'})


def test_layouts():
    assert layout_for_rows('fc_cls', 9, 8) == RowLayout(8, 1, True)
    assert layout_for_rows('fc_cls', 8, 8) == RowLayout(8, 1, False)
    assert layout_for_rows('fc_reg', 32, 8) == RowLayout(8, 4, False)
    assert layout_for_rows('conv_logits', 8, 8) == RowLayout(8, 1, False)
    assert layout_for_rows('fc_reg', 4, 8) is None  # class-agnostic
    assert layout_for_rows('shared_fcs', 8, 8) is None


def test_rows_background_and_new_classes():
    matches = match_classes(CITYSCAPES, COCO_CLASSES)
    source = torch.randn(80 * 4, 3)
    target = torch.randn(8 * 4, 3)
    # fc_reg: 4 rows per class, no background
    out = transfer_rows(target, source, RowLayout(8, 4, False), RowLayout(80, 4, False), matches)
    car = COCO_CLASSES.index('car')
    assert torch.equal(out[8:12], source[4 * car:4 * car + 4])  # car is new index 2
    # fc_cls: background moves from row 80 to row 8
    cls_src, cls_tgt = torch.randn(81, 5), torch.randn(9, 5)
    out = transfer_rows(cls_tgt, cls_src, RowLayout(8, 1, True), RowLayout(80, 1, True), matches)
    assert torch.equal(out[8], cls_src[80])
    assert torch.equal(out[1], cls_src[0])  # rider <- person
    new_only = match_classes(('unicorn', 'car'), COCO_CLASSES)
    out = transfer_rows(cls_tgt[:3], cls_src, RowLayout(2, 1, True), RowLayout(80, 1, True),
                        new_only)
    assert torch.equal(out[0], cls_tgt[0])  # a new class keeps its initialisation
    assert torch.equal(out[1], cls_src[car])
