"""Detection models: importing this package registers every part in MODELS / TASK_UTILS."""
from . import (backbones, data_preprocessors, dense_heads, detectors, losses,  # noqa: F401
               necks, roi_heads, task_modules)
