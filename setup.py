"""Builds loopviz's C extensions with the package: the native recorder core
(src/loopviz/recorder/_native.c) and the native watchdog (src/loopviz/recorder/_stackwatch.c).

Everything else about the package is in pyproject.toml. Each extension is optional: where it cannot
be built (no C compiler, another interpreter), the install still succeeds and loopviz records with
its pure-Python recorder and watchdog, saying so in one line (docs/recording.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "loopviz.recorder._native",
            sources=["src/loopviz/recorder/_native.c"],
            optional=True,
        ),
        # The native watchdog: reads a loop thread's stack while C code holds the GIL.
        Extension(
            "loopviz.recorder._stackwatch",
            sources=["src/loopviz/recorder/_stackwatch.c"],
            optional=True,
        ),
    ]
)
