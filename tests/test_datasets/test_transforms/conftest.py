"""The ``sample`` fixture: make_results with bitmap and with polygon masks."""
import pytest

from tests.test_datasets.test_transforms.transform_samples import make_results


@pytest.fixture(params=['bitmap', 'polygon'])
def sample(request):
    return make_results(request.param)
