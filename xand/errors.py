"""Errors raised at the boundaries: one clear message naming the file, the value and what was expected."""

from __future__ import annotations

from pathlib import Path


class XandError(Exception):
    """Base class of every error the xand core raises on bad input."""


class DataError(XandError, ValueError):
    """A dataset, record or file is missing, malformed or inconsistent.

    Parameters
    ----------
    path : the file or folder concerned (may be None when no file is involved)
    problem : what is wrong, e.g. ``"has 11 leads"``
    expected : what was expected instead, e.g. ``"12 leads (I, II, ..., V6)"``
    """

    def __init__(self, path: str | Path | None, problem: str, expected: str | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.expected = expected
        where = f"{self.path}: " if self.path is not None else ""
        tail = f" (expected {expected})" if expected else ""
        super().__init__(f"{where}{problem}{tail}")


class SplitLeakError(DataError):
    """A patient appears in more than one of train / val / test."""


class UnknownNameError(XandError, KeyError):
    """A registry lookup (model, attribution method, head, ...) used a name that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(self.valid))}")

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return self.args[0]
