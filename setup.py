"""The statistics pass's CPU kernel (worker/engine/fold_rows.c); everything else is in pyproject.toml.

``optional=True``: where no C compiler is at hand the install goes on without it and the pass uses
XLA (worker/engine/fold_kernel.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "worker.engine._fold_rows",
            sources=["worker/engine/fold_rows.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
