"""Data structures shared by datasets, models and metrics. Imports nothing else of mmft."""
from .det_data_sample import DetDataSample, OptSampleList, SampleList

__all__ = ['DetDataSample', 'SampleList', 'OptSampleList']
