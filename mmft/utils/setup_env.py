"""Registering mmft's modules and making it MMEngine's default scope."""
import datetime

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmft module that registers something.

    Also sets up safe checkpoint reading (allow-listed ``weights_only`` loads)
    and atomic checkpoint writing, which every entry point needs.

    Args:
        init_default_scope: also make ``mmft`` the current default scope, so
            that a build through MMEngine's root registries finds mmft's types
            first (what ``default_scope='mmft'`` does in a config).
    """
    import mmft.datasets  # noqa: F401
    import mmft.engine  # noqa: F401
    import mmft.evaluation  # noqa: F401
    import mmft.models  # noqa: F401
    import mmft.visualization  # noqa: F401
    from mmft.checkpoint import setup_checkpoint_io

    setup_checkpoint_io()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is not None and current.scope_name == 'mmft':
        return
    # DefaultScope instance names must be unique; the newest one is current
    name = 'mmft' if not DefaultScope.check_instance_created('mmft') else \
        f'mmft-{datetime.datetime.now()}'
    DefaultScope.get_instance(name, scope_name='mmft')
