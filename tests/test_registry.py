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
