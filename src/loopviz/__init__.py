"""loopviz: a live, replayable timeline of Python's asyncio event loop."""

__version__ = "0.1.0"
