"""Identity and permission: users with roles, API tokens, browser sessions, projects, the audit trail.

``backend.auth.deps`` is the one FastAPI dependency every router uses; ``backend.auth.users``,
``projects``, ``sessions`` and ``audit`` are the service functions behind it; ``backend.auth.cli`` is
``prunelab users``. Never imports TensorFlow.
"""
