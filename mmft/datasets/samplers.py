"""AspectRatioBatchSampler: batches of images on the same side of square.

Images with ``width < height`` and the others are batched apart, so that padding a batch to
its largest image wastes little. Reads ``width`` / ``height`` from the dataset's
``get_data_info`` (the wrappers forward it).
"""
from typing import Iterator, List

from torch.utils.data import BatchSampler, Sampler

from mmft.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class AspectRatioBatchSampler(BatchSampler):
    """Group the indices of ``sampler`` into batches of one aspect-ratio group.

    Args:
        sampler: Yields dataset indices (e.g. MMEngine's DefaultSampler).
        batch_size: Images per batch.
        drop_last: Drop the last, incomplete batch.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False) -> None:
        if not isinstance(sampler, Sampler):
            raise TypeError(f'AspectRatioBatchSampler needs a torch Sampler, got {sampler!r}')
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'AspectRatioBatchSampler batch_size must be a positive int, got '
                             f'{batch_size!r}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[List[int]]:
        dataset = self.sampler.dataset
        buckets: List[List[int]] = [[], []]  # portrait, landscape (or square)
        for idx in self.sampler:
            info = dataset.get_data_info(idx)
            bucket = buckets[0 if info['width'] < info['height'] else 1]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        # what is left goes into mixed batches, as in MMDetection
        rest = buckets[0] + buckets[1]
        for start in range(0, len(rest), self.batch_size):
            batch = rest[start:start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
