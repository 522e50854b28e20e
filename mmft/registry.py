"""mmft's registries: children of MMEngine's root registries under scope ``mmft``.

Configs set ``default_scope = 'mmft'``; MMEngine then looks a ``type`` up here
first and in the root registry (MMEngine's own optimizers, hooks, schedulers)
second. ``locations`` lets a build import the module that registers a type, so
``MODELS.build(dict(type='MaskRCNN', ...))`` works without importing
``mmft.models`` by hand.

An unknown ``type`` raises :class:`UnknownTypeError`: for an MMDetection type that mmft
does not implement it says so and lists mmft's types of that kind; otherwise it names the
registry and the closest registered names (MMEngine alone names neither the alternatives
nor a likely typo). A config left in MMDetection's scope is told to set
``default_scope='mmft'`` first.
"""
import difflib
import re
from contextlib import contextmanager
from typing import Iterator, List, Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

from mmft.mmdet_names import MMDET_TYPES

# mmengine's message for a missing type, e.g.
# "Foo is not in the mmft::model registry. Please check ..."
_MISSING_TYPE = re.compile(r'(?P<type>[\w.]+) is not in the (?:(?P<scope>[\w]+)::)?'
                           r'(?P<name>[\w ]+) registry')


class UnknownTypeError(KeyError):
    """A config asked for a ``type`` that no registry in scope knows."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ''


def _registered_names(registry: Registry) -> List[str]:
    """Names visible from ``registry``: its own and its ancestors'."""
    registry.import_from_location()
    names, node = [], registry
    while node is not None:
        names.extend(node.module_dict)
        node = node.parent
    return sorted(set(names))


def _find_registry(scope: Optional[str], name: str) -> Optional[Registry]:
    for parent in _ROOTS:
        if parent.name != name:
            continue
        if scope in (None, parent.scope):
            return parent
        return parent.children.get(scope, parent)
    return None


def _current_scope() -> Optional[str]:
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    return None if current is None else current.scope_name


def explain_unknown_type(exc: BaseException) -> Optional[UnknownTypeError]:
    """Turn MMEngine's "X is not in the registry" error into a helpful one.

    In order: a config still in MMDetection's scope (``default_scope='mmdet'``) is told so
    in the first line; a type that MMDetection 3.3 has and mmft does not implement is named
    as such, with mmft's own types of that kind; anything else gets the closest registered
    names (a typo). Returns None when ``exc`` is not such an error.
    """
    if isinstance(exc, UnknownTypeError):
        return exc
    match = _MISSING_TYPE.search(str(exc))
    if not isinstance(exc, KeyError) or match is None:
        return None
    wanted, scope, name = match['type'], match['scope'], match['name']
    registry = _find_registry(scope, name)
    names = _registered_names(registry) if registry is not None else []
    where = f'{scope}::{name}' if scope else name
    lines = []
    if 'mmdet' in (_current_scope(), scope):
        lines.append("default_scope='mmdet' (an MMDetection config used as it is): set "
                     "default_scope='mmft' in the config (or --cfg-options "
                     "default_scope=mmft); mmft registers its types under scope 'mmft'.")
    bare = wanted.split('.', 1)[1] if wanted.startswith('mmdet.') else wanted
    mmft_registry = _find_registry('mmft', name)
    if bare in MMDET_TYPES.get(name, ()) and (mmft_registry is None
                                              or bare not in mmft_registry.module_dict):
        own = sorted(mmft_registry.module_dict) if mmft_registry is not None else []
        lines.append(f'`{bare}` is an MMDetection {name} that mmft does not implement; '
                     f"mmft's {name}s: {own}.")
        return UnknownTypeError('\n'.join(lines))
    close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.5)
    if not close:  # case slips ('maskrcnn') are common and score low
        close = [n for n in names if n.lower() == wanted.lower()]
    hint = (f'closest registered names: {close}' if close else
            f'registered names: {names[:40]}{" ..." if len(names) > 40 else ""}')
    lines.append(f"type '{wanted}' is not in the {where} registry; {hint}. Fix the "
                 "`type` in the config, or make sure the module that registers it is "
                 "imported (custom_imports) and the config sets default_scope='mmft'.")
    return UnknownTypeError('\n'.join(lines))


@contextmanager
def helpful_unknown_type() -> Iterator[None]:
    """Re-raise MMEngine's unknown-type KeyError with the closest names."""
    try:
        yield
    except KeyError as exc:
        better = explain_unknown_type(exc)
        if better is None or better is exc:
            raise
        raise better from None


class MMFTRegistry(Registry):
    """Registry whose ``build`` explains an unknown ``type``, and which reads MMDetection's
    scoped names (``'mmdet.QuadraticWarmupLR'``) as mmft's: mmft implements MMDetection's
    types under its own scope."""

    def get(self, key: str):
        if isinstance(key, str) and key.startswith('mmdet.'):
            key = key[len('mmdet.'):]
        return super().get(key)

    def build(self, cfg, *args, **kwargs):
        with helpful_unknown_type():
            return super().build(cfg, *args, **kwargs)


def _child(parent: Registry, location: str) -> MMFTRegistry:
    return MMFTRegistry(parent.name, parent=parent, scope='mmft', locations=[location])


MODELS = _child(MMENGINE_MODELS, 'mmft.models')
TASK_UTILS = _child(MMENGINE_TASK_UTILS, 'mmft.models.task_modules')
WEIGHT_INITIALIZERS = _child(MMENGINE_WEIGHT_INITIALIZERS, 'mmft.models')
MODEL_WRAPPERS = _child(MMENGINE_MODEL_WRAPPERS, 'mmft.models')
DATASETS = _child(MMENGINE_DATASETS, 'mmft.datasets')
DATA_SAMPLERS = _child(MMENGINE_DATA_SAMPLERS, 'mmft.datasets.samplers')
TRANSFORMS = _child(MMENGINE_TRANSFORMS, 'mmft.datasets.transforms')
METRICS = _child(MMENGINE_METRICS, 'mmft.evaluation')
EVALUATOR = _child(MMENGINE_EVALUATOR, 'mmft.evaluation')
HOOKS = _child(MMENGINE_HOOKS, 'mmft.engine.hooks')
LOOPS = _child(MMENGINE_LOOPS, 'mmft.engine')
RUNNERS = _child(MMENGINE_RUNNERS, 'mmft.engine')
OPTIMIZERS = _child(MMENGINE_OPTIMIZERS, 'mmft.engine')
OPTIM_WRAPPERS = _child(MMENGINE_OPTIM_WRAPPERS, 'mmft.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, 'mmft.engine')
PARAM_SCHEDULERS = _child(MMENGINE_PARAM_SCHEDULERS, 'mmft.engine')
LOG_PROCESSORS = _child(MMENGINE_LOG_PROCESSORS, 'mmft.engine')
VISUALIZERS = _child(MMENGINE_VISUALIZERS, 'mmft.visualization')
VISBACKENDS = _child(MMENGINE_VISBACKENDS, 'mmft.visualization')

_ROOTS = [
    MMENGINE_MODELS, MMENGINE_TASK_UTILS, MMENGINE_WEIGHT_INITIALIZERS,
    MMENGINE_MODEL_WRAPPERS, MMENGINE_DATASETS, MMENGINE_DATA_SAMPLERS,
    MMENGINE_TRANSFORMS, MMENGINE_METRICS, MMENGINE_EVALUATOR, MMENGINE_HOOKS,
    MMENGINE_LOOPS, MMENGINE_RUNNERS, MMENGINE_OPTIMIZERS, MMENGINE_OPTIM_WRAPPERS,
    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, MMENGINE_PARAM_SCHEDULERS,
    MMENGINE_LOG_PROCESSORS, MMENGINE_VISUALIZERS, MMENGINE_VISBACKENDS
]
