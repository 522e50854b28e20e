"""Name patterns: wildcards, module paths, regexes, presets, and typos caught."""
import pytest

from mmft.finetune.patterns import known_presets, model_presets, select

NAMES = ['backbone.conv1.weight', 'backbone.layer1.0.conv1.weight', 'backbone.layer10.weight',
         'roi_head.bbox_head.fc_cls.weight', 'roi_head.bbox_head.fc_cls.bias',
         'roi_head.bbox_head.fc_reg.weight', 'roi_head.mask_head.conv_logits.weight']


def test_wildcard_module_path_and_regex():
    assert select(NAMES, ['*fc_cls*']) == NAMES[3:5]
    # a module path selects the module and below, never a sibling sharing a prefix
    assert select(NAMES, ['backbone.layer1']) == ['backbone.layer1.0.conv1.weight']
    assert select(NAMES, ['re:fc_(cls|reg)\\.weight$']) == [NAMES[3], NAMES[5]]


def test_presets_are_what_the_model_declares(make_detector):
    model = make_detector(3)
    presets = model_presets(model)
    declared = ['roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
                'roi_head.mask_head.conv_logits']
    assert presets == {'class_rows': declared, 'mask_rcnn': declared}
    assert select(NAMES, ['mask_rcnn'], presets=presets) == NAMES[3:]
    assert select(NAMES, ['class_rows'], presets=presets) == NAMES[3:]
    # the RPN's rows are class-agnostic: never in a preset
    model.rpn_head.class_agnostic = False
    assert 'rpn_head.rpn_cls' not in model_presets(model)['class_rows']


def test_registered_detectors_bring_their_presets():
    presets = known_presets()
    assert presets['mask_rcnn'] == 'MaskRCNN' and presets['faster_rcnn'] == 'FasterRCNN'


def test_a_preset_of_another_family_is_an_error(make_detector):
    presets = model_presets(make_detector(3))
    with pytest.raises(ValueError, match=r"preset 'faster_rcnn' is the class-dependent layers "
                                         r"of FasterRCNN models; this model has presets "
                                         r"\['class_rows', 'mask_rcnn'\]"):
        select(NAMES, ['faster_rcnn'], presets=presets)


def test_a_pattern_that_matches_nothing_names_the_closest_modules():
    with pytest.raises(ValueError, match=r"finetune.freeze 'backbone.layr1' matches no name; "
                                         r"closest names: \['backbone.layer1"):
        select(NAMES, ['backbone.layr1'], 'finetune.freeze')
    assert select(NAMES, ['nothing*'], require_match=False) == []


def test_bad_regex_is_reported():
    with pytest.raises(ValueError, match='bad regular expression'):
        select(NAMES, ['re:fc_(cls'])
