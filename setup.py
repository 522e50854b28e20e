"""Install mmft: ``pip install -e .``, ``.[cityscapes]`` or ``.[tests]`` (all extras).

``make test`` and ``make demo`` run ``pip install -e .[tests]`` into a virtualenv (Makefile).
"""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of requirements/NAME.txt, comments dropped."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmft', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmft',
    version=read_version(),
    description='Fine-tuning object detectors on MMEngine',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(
        osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmft', 'mmft.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime'),
    extras_require={
        'cityscapes': read_requirements('cityscapes'),
        'lvis': read_requirements('lvis'),
        'albu': read_requirements('albu'),
        # the suite tests every optional part: a missing extra fails it, it never skips
        'tests': read_requirements('tests') + read_requirements('cityscapes')
        + read_requirements('lvis') + read_requirements('albu'),
    },
    license='Apache-2.0',
)
