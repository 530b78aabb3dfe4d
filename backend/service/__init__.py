"""The experiment service: everything the API does, without HTTP.

Modules:
    errors    one exception per domain failure (the API maps each to one HTTP status).
    ports     the protocols the service needs from outside (the queue).
    commands  create, cancel, rerun, delete: conditional updates safe against a worker's claim.
    queries   listing, one experiment, cycles, epochs, layer statistics, artifacts.
    events    live progress as events, by polling the database.
    catalog   presets, datasets on this server, spec previews.
    health    the database, its schema revision, the broker.

Every function takes its session (or engine) and returns pydantic schemas from ``backend.schemas``,
never ORM rows. Nothing here imports TensorFlow.
"""
