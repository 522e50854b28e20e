import pytest
from mmengine.registry import MODELS as ROOT_MODELS

from mmft.registry import MODELS, UnknownTypeError, explain_unknown_type, helpful_unknown_type


def test_unknown_type_names_registry_and_closest_names():
    with pytest.raises(UnknownTypeError) as info:
        MODELS.build(dict(type='BaseDataPreprocesor'))  # one letter missing
    message = str(info.value)
    assert 'mmft::model registry' in message
    assert "'BaseDataPreprocesor'" in message
    assert 'BaseDataPreprocessor' in message.split('closest registered names')[1]


def test_unknown_type_through_root_registry_as_the_runner_builds():
    # the Runner builds through MMEngine's root registry with default_scope='mmft'
    with pytest.raises(UnknownTypeError) as info, helpful_unknown_type():
        ROOT_MODELS.build(dict(type='basedatapreprocessor'))
    assert 'BaseDataPreprocessor' in str(info.value)


def test_nested_unknown_type_is_explained_once():
    wrapped = KeyError('class `MaskRCNN` in x.py: ResNot is not in the mmft::model registry. '
                       'Please check whether the value of `ResNot` is correct')
    better = explain_unknown_type(wrapped)
    assert isinstance(better, UnknownTypeError)
    assert "type 'ResNot'" in str(better)
    assert explain_unknown_type(better) is better
    assert explain_unknown_type(KeyError('plain missing key')) is None


def test_types_build_without_importing_their_modules():
    # locations=['mmft.models'] imports the module that registers the type
    preprocessor = MODELS.build(dict(type='BaseDataPreprocessor'))
    assert preprocessor is not None


# MMDetection 3.3 types that mmft does not implement (yet): if one of these is added to mmft,
# pick another from mmft/mmdet_names.py; a typo still gets difflib's names
@pytest.mark.parametrize('wanted', ['DINO', 'Mask2Former', 'CenterNet'])
def test_mmdetection_type_that_mmft_lacks_is_named_as_such(wanted):
    assert wanted not in MODELS.module_dict
    with pytest.raises(UnknownTypeError) as info:
        MODELS.build(dict(type=wanted))
    message = str(info.value)
    assert message.startswith(f'`{wanted}` is an MMDetection model that mmft does not '
                              "implement; mmft's models: [")
    for own in ('MaskRCNN', 'FasterRCNN', 'ResNet', 'FPN'):
        assert f"'{own}'" in message
    assert 'closest' not in message  # RetinaNet used to be told to try ResNet


def test_other_registries_and_registered_names_never_get_the_mmdetection_message():
    from mmft.registry import TRANSFORMS
    from mmft.mmdet_names import MMDET_TYPES
    with pytest.raises(UnknownTypeError, match="`InstaBoost` is an MMDetection transform that "
                                               "mmft does not implement; mmft's transforms: "):
        TRANSFORMS.build(dict(type='InstaBoost'))
    # mmft's own names are also MMDetection's: found, so never reported as missing
    assert {'MaskRCNN', 'ResNet', 'FPN'} <= MMDET_TYPES['model'] & set(MODELS.module_dict)
    with pytest.raises(UnknownTypeError, match="closest registered names: .*'MaskRCNN'"):
        MODELS.build(dict(type='MaskRCNNN'))


def test_config_in_mmdetection_scope_is_told_to_switch_in_the_first_line(repo_root, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmft.utils.cli import build_runner
    cfg = Config.fromfile(f'{repo_root}/configs/_base_/models/mask_rcnn_r18_fpn_small.py')
    cfg.merge_from_dict(dict(default_scope='mmdet', work_dir=str(tmp_path)))
    try:
        with pytest.raises(UnknownTypeError) as info:
            build_runner(cfg)
    finally:  # the Runner made 'mmdet' the current scope: later tests need 'mmft' back
        DefaultScope.get_instance('test_registry_mmft_again', scope_name='mmft')
    first, rest = str(info.value).split('\n', 1)
    assert first.startswith("default_scope='mmdet' (an MMDetection config used as it is): set "
                            "default_scope='mmft' in the config")
    assert 'MaskRCNN' in rest
