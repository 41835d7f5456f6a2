"""Telling the scenario's own code apart from the library code it calls.

A block's culprit, a task's spawn site and the place a task awaits are all "the innermost frame in
user code". User code is anything outside the standard library, installed packages and loopviz
itself; this module decides that once per file name and formats frames for people.
"""

from __future__ import annotations

import io
import linecache
import os
import sysconfig
import tokenize
from collections.abc import Callable
from functools import lru_cache
from types import CodeType, FrameType

_LIBRARY_DIRS = tuple(
    os.path.realpath(p) + os.sep
    for p in {
        sysconfig.get_paths()[key]
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if key in sysconfig.get_paths()
    }
) + (os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep,)
_LIBRARY_DIRS_LONGEST_FIRST = sorted(_LIBRARY_DIRS[:-1], key=len, reverse=True)


@lru_cache(maxsize=4096)
def is_user_file(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    return not os.path.realpath(filename).startswith(_LIBRARY_DIRS)


# Called with (display path, absolute path) the first time a file is named, so the recording
# can say which file each ``file:line`` means (the recorder emits a ``source`` event).
file_named: Callable[[str, str], None] | None = None


@lru_cache(maxsize=4096)
def display_path(filename: str) -> str:
    """A path as short as it can be while still naming the file: relative to the cwd if under it,
    a library's file relative to its ``site-packages`` or standard library folder
    (``uvicorn/protocols/http/h11_impl.py``), else absolute."""
    shown = _shortest(filename)
    if file_named is not None and not filename.startswith("<"):
        file_named(shown, os.path.abspath(filename))
    return shown


def _shortest(filename: str) -> str:
    real = os.path.realpath(filename)
    for folder in _LIBRARY_DIRS_LONGEST_FIRST:  # site-packages sits inside the stdlib's folder
        if real.startswith(folder):  # (and may sit in the cwd, as a project's .venv does)
            return real[len(folder) :]
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def where(frame: FrameType) -> str:
    return where_at(frame.f_code.co_filename, frame.f_lineno)


def where_at(filename: str, lineno: int) -> str:
    return f"{display_path(filename)}:{lineno}"


def source_line_at(filename: str, lineno: int) -> str:
    """A line of source, without a trailing comment, as a header has room for."""
    return _without_comment(linecache.getline(filename, lineno).strip())


@lru_cache(maxsize=4096)
def _without_comment(line: str) -> str:
    if "#" not in line:
        return line
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            if token.type == tokenize.COMMENT:
                return line[: token.start[1]].rstrip() or line
    except (tokenize.TokenError, SyntaxError):
        pass
    return line


_user_code: dict[CodeType, bool] = {}  # is_user_file per code object: a task's spawn is hot


def is_user_code(code: CodeType | None) -> bool:
    """Whether ``code`` is the program's own (not a library's, asyncio's or loopviz's)."""
    if code is None:
        return False
    user = _user_code.get(code)
    if user is None:
        user = _user_code[code] = is_user_file(code.co_filename)
    return user


def describe_line(filename: str, lineno: int, function: str) -> str:
    """A line as a block's stack lists it, ``file:line in func: source`` (from names, not a
    frame object: a frame read by the native watchdog has none)."""
    return f"{where_at(filename, lineno)} in {function}: {source_line_at(filename, lineno)}"
