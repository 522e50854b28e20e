"""Fixtures of the dataset tests; the data trees themselves are in dataset_trees.py."""
import logging

import pytest
from mmengine.logging import MMLogger

from tests.test_datasets.dataset_trees import write_image


@pytest.fixture
def image_writer():
    return write_image


@pytest.fixture
def log_messages():
    """Messages logged through MMEngine's current logger during the test."""
    messages = []

    class _Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = _Collect(level=logging.DEBUG)
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
