"""Builds loopviz's optional C extensions; everything else about the package is in pyproject.toml.

Each extension is optional: where it cannot be built (no compiler, another interpreter), the
install still succeeds and the recorder uses its pure-Python fallback.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # The native watchdog: reads a loop thread's stack while C code holds the GIL.
        Extension(
            "loopviz.recorder._stackwatch",
            sources=["src/loopviz/recorder/_stackwatch.c"],
            optional=True,
        ),
    ],
)
