"""A program that looks at its own __file__, sys.argv and sys.path[0]."""

import os
import sys

print("__file__", __file__)
print("absolute", os.path.isabs(__file__))
print("argv", sys.argv)
print("path0", sys.path[0])
print("name", __name__)
