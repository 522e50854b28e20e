"""Detection models: importing this package registers every part in MODELS / TASK_UTILS."""
from . import (backbones, batch_augments, data_preprocessors, dense_heads,  # noqa: F401
               detectors, losses, necks, roi_heads, task_modules,
               test_time_augs)
