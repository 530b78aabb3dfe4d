"""Reading uploaded files safely: the only package that opens a user's .keras or .npz with Keras or NumPy.

It runs as a short-lived subprocess (``python -m worker.ingest``) with a memory and a time limit, so a
hostile file can at worst end that process; the web service never imports it (``backend.service.uploads``
starts it and reads one JSON line back). Every refusal is an :class:`~worker.ingest.errors.Refused`
naming the problem (and the layer or key) without naming a path on the server.

Modules: ``zipcheck`` (the zip container, before anything is extracted), ``keras_config`` (config.json as
data: allow-listed Keras classes only), ``keras_file`` (safe-mode load, weights, the model as a spec),
``arrays`` (.npz headers and values, IDX files), ``limits`` and ``__main__`` (the subprocess).
"""
