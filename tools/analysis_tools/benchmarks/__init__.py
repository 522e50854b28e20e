"""The comparisons behind ``tools/analysis_tools/benchmark.py --model NAME``, one module per
family (Mask R-CNN's lives in benchmark.py itself, with the shared timing helpers).

A module plugs in with four names and one table row:

- ``MODELS_SERVED``: ``{NAME: {option: default, ...}}``, the ``--model`` names it answers and
  the defaults each one sets (e.g. ``{'retinanet': dict(families=['retinanet'])}``);
- ``DEFAULTS``: its defaults of the common options (``batch``, ``iters``, ``warmup``);
- ``add_arguments(parser)``: its own options (never ``--batch --threads --iters --warmup
  --device --out``, which benchmark.py defines once); optional ``check_args(parser, args)``;
- ``run(args) -> dict``: the report written to ``--out`` (``environment`` and ``results``),
  and ``format_table(report) -> str``: what is printed.

Then add ``'NAME': 'tools.analysis_tools.benchmarks.<module>'`` to ``BENCHMARKS`` in
benchmark.py. benchmark.py sets threads, logging, the seed and ``register_all_modules``
before ``run``; a module only measures. Tests call ``benchmark.main(['--model', NAME, ...])``.
"""
