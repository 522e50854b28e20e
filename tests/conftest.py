"""Shared test set-up: mmft registered, default scope 'mmft', repo root importable."""
import os.path as osp
import sys

import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # tools/*.py are imported by tests as modules
    sys.path.insert(0, REPO_ROOT)

# 2 cores: several torch threads per test process only fight each other
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope='session')
def _register_mmft():
    from mmft.utils import register_all_modules
    register_all_modules()


@pytest.fixture
def repo_root() -> str:
    return REPO_ROOT
