"""Versions of the installed libraries that a result depends on, for manifests, checkpoints and reports."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version


def installed_versions(names: Iterable[str]) -> dict[str, str]:
    """`name -> version` for each distribution; `not installed` for those absent.

    >>> installed_versions(["numpy", "no-such-distribution"])["no-such-distribution"]
    'not installed'
    """
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
