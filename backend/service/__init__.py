"""The experiment service: everything the API does, without HTTP.

Modules:
    queries    listing, one experiment, cycles, epochs, layer statistics, artifacts.
    commands   create, cancel, rerun, delete: conditional updates safe against a worker's claim.
    events     live progress as events, by polling the database.
    catalog    presets, datasets on this server, spec previews (costs and dependency groups).
    architecture  two cycles' models: layers with inputs and groups, groups' widths, the drawn graph.
    health     the database, its schema revision, the broker.
    ports      the protocols the service needs from outside (the queue).
    errors     one exception per domain failure (the API maps each to one HTTP status).
    runs       the worker's lease: claim, heartbeat, cancel check, fail, mark cancelled.
    recording  what a running experiment writes: versions, epochs, cycles, its finish.
    checkpoints  where a resumed run starts: the newest checkpoint and the kept cycle, as bytes.
    orphans    running experiments whose worker died: find them, re-queue or fail them.
    imports    a local run's results.json added to the history as a succeeded experiment.
    exports    one experiment as a download: JSON document, CSV of cycles or epochs.
    figures    one experiment's figures: the rows each needs, mapped to ``backend.figures`` inputs.
    compare    experiments side by side: the table, its exports, the settings and the figures.
    benchmarks an experiment's TFLite benchmarks: which cycles, their rows, reading them.
    crossover  crossover runs (dense vs sparse timing): create, queue, read, the worker's claim.
    uploads    uploaded models and data sets, stored by content hash: list, read, use, delete.
    uploads_ingest  inspecting an upload in the ingest subprocess, never in this process.
    spec_paths a stored spec's dataset path, checked again before a rerun reuses it.

Every function takes its session (or engine) and returns pydantic schemas from ``backend.schemas``,
never ORM rows. Nothing here imports TensorFlow.
"""
