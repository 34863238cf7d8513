"""One registry style for every pluggable part: models, attribution methods, baselines, removal
operators, delineators, losses, upload formats and benchmarks.

After timm's ``register_model`` / ``create_model``: a module declares ``MODELS = Registry("model")`` and
decorates each implementation with ``@MODELS.register("name")``; callers look names up with
``MODELS.get(name)`` (or ``MODELS[name]``) and build with ``MODELS.create(name, **kwargs)``. An unknown
name raises :class:`~xand.errors.UnknownNameError` listing the valid ones. A registry is a mapping, so
``name in REG``, ``list(REG)`` and ``REG.items()`` work as on a dict; item assignment and deletion
exist for tests and plug-ins that replace an entry on purpose (``register`` refuses a second one).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Generic, TypeVar

from xand.errors import UnknownNameError

T = TypeVar("T")
_MISSING = object()


class Registry(MutableMapping[str, T], Generic[T]):
    """Named implementations of one kind of thing.

    Parameters
    ----------
    kind : what the entries are, for error messages ("model", "attribution method", ...)
    default : the name listed first by :meth:`names` (the project default), optional
    """

    def __init__(self, kind: str, default: str | None = None):
        self.kind = kind
        self.default = default
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Any:
        """Add ``obj`` under ``name``; without ``obj``, a decorator that adds what it decorates.

        A name registered twice is an error (two implementations would silently shadow each other).
        """
        def add(o: T) -> T:
            if name in self._entries and self._entries[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = o
            return o

        return add(obj) if obj is not None else add

    def get(self, name: str, default: Any = _MISSING) -> T:  # type: ignore[override]
        """The entry registered as ``name``. Unknown: ``default`` when one is passed (the mapping
        contract), else ``UnknownNameError`` listing the valid names."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            if default is not _MISSING:
                return default
            raise UnknownNameError(self.kind, str(name), self.names()) from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry ``name`` (a class or factory) with the given arguments."""
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} is not a factory")
        return factory(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names, the default first, then in the order they were registered."""
        return sorted(self._entries, key=lambda n: n != self.default)  # sorted() is stable

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, obj: T) -> None:
        self._entries[name] = obj

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


__all__ = ["Registry"]
