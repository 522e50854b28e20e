"""Parameter schedulers that MMDetection configs name and MMEngine does not have."""
from .quadratic_warmup import (QuadraticWarmupLR, QuadraticWarmupMomentum,
                               QuadraticWarmupParamScheduler)

__all__ = ['QuadraticWarmupParamScheduler', 'QuadraticWarmupLR', 'QuadraticWarmupMomentum']
