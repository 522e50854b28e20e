"""AspectRatioBatchSampler: every full batch is one orientation; nothing lost or repeated."""
import pytest
from mmengine.dataset import DefaultSampler

from mmft.datasets import AspectRatioBatchSampler
from mmft.registry import DATA_SAMPLERS


class _Sizes:
    """A dataset stand-in: only get_data_info's width/height matter."""

    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def get_data_info(self, idx):
        w, h = self.sizes[idx]
        return dict(width=w, height=h)


SIZES = [(64, 32), (32, 64), (64, 32), (32, 64), (32, 64), (64, 64), (64, 32)]


def _portrait(dataset, idx):
    info = dataset.get_data_info(idx)
    return info['width'] < info['height']


@pytest.mark.parametrize('drop_last', [False, True])
def test_batches_share_an_orientation(drop_last):
    dataset = _Sizes(SIZES)
    sampler = DATA_SAMPLERS.build(
        dict(type='AspectRatioBatchSampler', drop_last=drop_last),
        default_args=dict(sampler=DefaultSampler(dataset, shuffle=True, seed=0), batch_size=2))
    assert isinstance(sampler, AspectRatioBatchSampler)
    batches = list(sampler)
    # only the leftovers of the two buckets (at most one image each) may share a batch
    mixed = [b for b in batches if len({_portrait(dataset, i) for i in b}) > 1]
    assert len(mixed) <= 1 and (not mixed or mixed[0] == batches[-1])
    seen = sorted(i for b in batches for i in b)
    if drop_last:
        assert len(batches) == len(sampler) == 3 and len(seen) == 6
    else:
        assert seen == list(range(7)) and len(batches) == len(sampler) == 4


def test_orientation_buckets_fixed_order():
    dataset = _Sizes(SIZES)
    sampler = AspectRatioBatchSampler(DefaultSampler(dataset, shuffle=False), batch_size=2)
    # landscape/square: 0, 2, 5, 6; portrait: 1, 3, 4
    assert list(sampler) == [[0, 2], [1, 3], [5, 6], [4]]


def test_rejects_bad_arguments():
    with pytest.raises(TypeError, match='Sampler'):
        AspectRatioBatchSampler([0, 1], batch_size=2)
    with pytest.raises(ValueError, match='batch_size'):
        AspectRatioBatchSampler(DefaultSampler(_Sizes(SIZES)), batch_size=0)
