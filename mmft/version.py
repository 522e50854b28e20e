"""Package version, kept in one place for setup.py and checkpoints' meta."""
__version__ = '0.1.0'
