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
    orphans    running experiments whose worker died: find them, re-queue or fail them.

Every function takes its session (or engine) and returns pydantic schemas from ``backend.schemas``,
never ORM rows. Nothing here imports TensorFlow.
"""
