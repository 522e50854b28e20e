import pytest
import torch
from torch import nn

from mmft.structures.class_rows import (ClassRows, class_row_modules, copy_class_rows,
                                        declare, find_class_rows)


def test_rows_of_softmax_classifier_background_last():
    rows = ClassRows(3, background='last', activation='softmax')
    assert rows.num_rows == 4
    assert rows.rows_of(2).tolist() == [2]
    assert rows.background_rows().tolist() == [3]


def test_rows_of_box_deltas_four_per_class():
    rows = ClassRows(3, per_class=4)
    assert rows.num_rows == 12
    assert rows.rows_of(1).tolist() == [4, 5, 6, 7]
    assert rows.background_rows().numel() == 0


def test_rows_of_per_anchor_sigmoid_blocks():
    # RetinaNet: channel a * n + c
    rows = ClassRows(5, groups=3)
    assert rows.num_rows == 15
    assert rows.rows_of(2).tolist() == [2, 7, 12]


def test_rows_of_yolo_blocks_with_prefix():
    # YOLOv3: per anchor 4 box + 1 objectness + n classes
    rows = ClassRows(2, groups=3, prefix=5)
    assert rows.num_rows == 21
    assert rows.rows_of(1).tolist() == [6, 13, 20]
    assert rows.prefix_rows().tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 14, 15, 16, 17, 18]


def test_rows_of_background_first_ssd_like():
    rows = ClassRows(2, groups=2, background='first', activation='softmax')
    assert rows.rows_of(0).tolist() == [1, 4]
    assert rows.background_rows().tolist() == [0, 3]


def test_fit_toggles_background_for_softmax_to_sigmoid():
    sigmoid = ClassRows(4)
    assert sigmoid.fit(4, 4) == sigmoid
    softmax = sigmoid.fit(6, 5)
    assert softmax.background == 'last' and softmax.activation == 'softmax'
    assert sigmoid.fit(7, 5) is None


def test_copy_class_rows_copies_matched_classes_background_and_prefix():
    old = ClassRows(3, groups=2, prefix=1, background='last', activation='softmax')
    new = old.with_classes(2)
    source = torch.arange(old.num_rows, dtype=torch.float)[:, None].repeat(1, 2)
    target = torch.full((new.num_rows, 2), -1.0)
    # new class 0 <- old class 2, new class 1 is new
    out = copy_class_rows(target, new, source, old, [2, None])
    # old block: [prefix 0, c0 1, c1 2, c2 3, bg 4], [5, 6, 7, 8, 9]
    # new block: [prefix, c0, c1, bg]
    assert out[:, 0].tolist() == [0, 3, -1, 4, 5, 8, -1, 9]
    assert target[0, 0] == -1  # the input is not modified


def test_copy_class_rows_rejects_other_blocks():
    with pytest.raises(ValueError, match='block layouts differ'):
        copy_class_rows(torch.zeros(6), ClassRows(3, groups=2), torch.zeros(3),
                        ClassRows(3), [0, 1, 2])


class _Head(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.cls = nn.Linear(4, n + 1)
        self.reg = nn.Linear(4, 4 * n)

    def class_rows(self):
        return {**declare('cls', ClassRows(self.cls.out_features - 1, background='last',
                                           activation='softmax')),
                **declare('reg', ClassRows(self.reg.out_features // 4, per_class=4))}


def test_find_class_rows_walks_modules_and_checks_row_counts():
    model = nn.Module()
    model.head = _Head(3)
    found = find_class_rows(model)
    assert sorted(found) == ['head.cls.bias', 'head.cls.weight', 'head.reg.bias',
                             'head.reg.weight']
    assert class_row_modules(found) == ['head.cls', 'head.reg']
    model.head.class_rows = lambda: {'cls.weight': ClassRows(7)}
    with pytest.raises(ValueError, match='declares .head.cls.weight. as 7 rows'):
        find_class_rows(model)


def test_mask_rcnn_heads_declare_their_rows():
    from mmft.registry import MODELS
    bbox = MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16,
                             roi_feat_size=7, num_classes=5))
    rows = find_class_rows(bbox)
    assert rows['fc_cls.weight'] == ClassRows(5, background='last', activation='softmax')
    assert rows['fc_reg.bias'] == ClassRows(5, per_class=4)
    agnostic = MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16,
                                 roi_feat_size=7, num_classes=5, reg_class_agnostic=True))
    assert 'fc_reg.weight' not in find_class_rows(agnostic)
    mask = MODELS.build(dict(type='FCNMaskHead', num_convs=1, in_channels=8, conv_out_channels=8,
                             num_classes=5))
    assert find_class_rows(mask) == declare('conv_logits', ClassRows(5))


def test_gather_class_rows_builds_the_target_layout_from_the_source():
    from mmft.structures.class_rows import gather_class_rows
    # torchvision-like: background first, 3 classes -> MMDetection: 2 of them, background last
    source = torch.arange(4.)[:, None]
    out = gather_class_rows(source, ClassRows(3, background='first', activation='softmax'),
                            ClassRows(2, background='last', activation='softmax'), [2, 0])
    assert out[:, 0].tolist() == [3, 1, 0]
    with pytest.raises(ValueError, match='the target has a background row'):
        gather_class_rows(torch.zeros(3), ClassRows(3), ClassRows(3, background='last'),
                          [0, 1, 2])
