"""The experiment language, shared by the web side and the engine: pure Python, no TensorFlow, no database.

* ``layers`` — the model graph: layers with their inputs, validation (layer types in ``layer_types``,
  wiring and shape inference in ``graph``);
* ``spec`` — an experiment (model, dataset, training, pruning, benchmarks) and its criteria;
* ``presets`` — named models; ``costs`` — parameters and FLOPs; ``metrics`` — each metric's direction;
* ``spec_yaml`` — bounded YAML reading; ``datapaths`` — the data directories a spec may name;
* ``uploaded`` — how a request's spec resolves uploads named by id (the server sets the resolver).

The backend and the worker both import this package; it imports neither (tests/unit/test_import_rules.py).
"""
