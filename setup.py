"""Builds the native recorder core (src/loopviz/recorder/_native.c) with the package.

Everything else about the package is in pyproject.toml. The extension is optional: where it cannot
be built (no C compiler, another interpreter), the install still succeeds and loopviz records with
its pure-Python recorder, saying so in one line (docs/recording.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "loopviz.recorder._native",
            sources=["src/loopviz/recorder/_native.c"],
            optional=True,
        )
    ]
)
