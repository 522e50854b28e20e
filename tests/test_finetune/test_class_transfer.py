"""Class rows move by name: COCO -> Cityscapes as the running example."""
import torch

from mmft.checkpoint.converters import COCO_CLASSES
from mmft.finetune.class_transfer import match_classes, plan_class_transfer
from mmft.structures.class_rows import ClassRows

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


def test_declared_rows_background_and_new_classes():
    matches = match_classes(CITYSCAPES, COCO_CLASSES)
    checkpoint = {'reg': torch.randn(80 * 4, 3), 'cls': torch.randn(81, 5)}
    model = {'reg': torch.randn(8 * 4, 3), 'cls': torch.randn(9, 5)}
    rows = {'reg': ClassRows(8, per_class=4),
            'cls': ClassRows(8, background='last', activation='softmax')}
    out, failed = plan_class_transfer(model, checkpoint, rows, CITYSCAPES, COCO_CLASSES, matches)
    assert failed == {}
    car = COCO_CLASSES.index('car')
    assert torch.equal(out['reg'][8:12], checkpoint['reg'][4 * car:4 * car + 4])  # car: index 2
    assert torch.equal(out['cls'][8], checkpoint['cls'][80])  # background: row 80 -> row 8
    assert torch.equal(out['cls'][1], checkpoint['cls'][0])  # rider <- person


def test_a_new_class_keeps_its_initialisation_and_misfits_are_reported():
    new_only = ('unicorn', 'car')
    matches = match_classes(new_only, COCO_CLASSES)
    checkpoint = {'cls': torch.randn(81, 5), 'odd': torch.randn(7, 5)}
    model = {'cls': torch.randn(3, 5), 'odd': torch.randn(3, 5)}
    rows = {'cls': ClassRows(2, background='last', activation='softmax'),
            'odd': ClassRows(2, background='last', activation='softmax')}
    out, failed = plan_class_transfer(model, checkpoint, rows, new_only, COCO_CLASSES, matches)
    assert torch.equal(out['cls'][0], model['cls'][0])  # unicorn
    assert torch.equal(out['cls'][1], checkpoint['cls'][COCO_CLASSES.index('car')])
    assert 'odd' not in out and 'does not fit 80 checkpoint classes' in failed['odd']


def test_per_anchor_sigmoid_rows_move_for_every_anchor():
    old, new = ('a', 'b', 'c'), ('c', 'x', 'a')
    checkpoint = {'cls': torch.arange(9.)[:, None]}  # 3 anchors x 3 classes
    model = {'cls': torch.full((9, 1), -4.5)}  # the focal-loss prior
    rows = {'cls': ClassRows(3, groups=3)}
    out, _ = plan_class_transfer(model, checkpoint, rows, new, old, match_classes(new, old))
    assert out['cls'][:, 0].tolist() == [2, -4.5, 0, 5, -4.5, 3, 8, -4.5, 6]
