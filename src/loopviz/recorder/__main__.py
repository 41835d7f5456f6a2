"""``python -m loopviz.recorder``: what the session runs in the child process."""

import sys

from loopviz.recorder.child import main

sys.exit(main())
