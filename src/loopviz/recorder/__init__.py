"""The recorder: the part of loopviz that runs inside the scenario's own process.

It installs an instrumented task factory and a few loop hooks, runs the scenario as ``__main__``,
and streams events to the parent over a dedicated pipe. It imports neither textual nor rich, so it
stays cheap and never drags UI code into the program under study.
"""
