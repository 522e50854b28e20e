"""Name patterns: wildcards, module paths, regexes, presets, and typos caught."""
import pytest

from mmft.finetune.patterns import expand_presets, select

NAMES = ['backbone.conv1.weight', 'backbone.layer1.0.conv1.weight', 'backbone.layer10.weight',
         'roi_head.bbox_head.fc_cls.weight', 'roi_head.bbox_head.fc_cls.bias',
         'roi_head.bbox_head.fc_reg.weight', 'roi_head.mask_head.conv_logits.weight']


def test_wildcard_module_path_and_regex():
    assert select(NAMES, ['*fc_cls*']) == NAMES[3:5]
    # a module path selects the module and below, never a sibling sharing a prefix
    assert select(NAMES, ['backbone.layer1']) == ['backbone.layer1.0.conv1.weight']
    assert select(NAMES, ['re:fc_(cls|reg)\\.weight$']) == [NAMES[3], NAMES[5]]


def test_presets_expand_to_the_class_dependent_layers():
    assert select(NAMES, ['mask_rcnn']) == NAMES[3:]
    assert select(NAMES, 'faster_rcnn') == NAMES[3:6]
    assert expand_presets(['retinanet', '*x*']) == ['bbox_head.retina_cls', '*x*']
    assert expand_presets('mask_rcnn') == ['roi_head.bbox_head.fc_cls',
                                           'roi_head.bbox_head.fc_reg',
                                           'roi_head.mask_head.conv_logits']


def test_a_pattern_that_matches_nothing_names_the_closest_modules():
    with pytest.raises(ValueError, match=r"finetune.freeze 'backbone.layr1' matches no name; "
                                         r"closest names: \['backbone.layer1"):
        select(NAMES, ['backbone.layr1'], 'finetune.freeze')
    assert select(NAMES, ['nothing*'], require_match=False) == []


def test_bad_regex_is_reported():
    with pytest.raises(ValueError, match='bad regular expression'):
        select(NAMES, ['re:fc_(cls'])
