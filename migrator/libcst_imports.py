"""LibCST's codemod framework, imported without the part of its cost nobody reads.

``libcst.matchers`` (which ``libcst.codemod`` imports) defines about 200 dataclasses without
docstrings, and for each ``dataclasses`` writes one from the class's signature: it renders every
annotation, unions of dozens of matcher types. That is a third of the module's import (0.1 of
0.3 s) on every cold conversion, for docstrings no one reads. Imported through
``import_codemod_framework``, those classes get their name alone as their docstring, which is
what ``dataclasses`` itself writes when it cannot have a signature.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys


class _NoSignatures:
    """``inspect`` as ``dataclasses`` sees it meanwhile: ``signature`` fails as it may for any
    class, which ``dataclasses`` catches; everything else is ``inspect``'s."""

    def __getattr__(self, name: str):
        return getattr(inspect, name)

    @staticmethod
    def signature(*args, **kwargs):
        raise ValueError("no signature rendered while LibCST's matchers are imported")


def import_codemod_framework() -> None:
    """``import libcst.codemod``, the first time with the matchers' signatures left unrendered."""
    if "libcst.matchers" in sys.modules or getattr(dataclasses, "inspect", None) is not inspect:
        import libcst.codemod  # noqa: F401  (imported already, or a dataclasses this does not know)

        return
    dataclasses.inspect = _NoSignatures()  # type: ignore[attr-defined]
    try:
        import libcst.codemod  # noqa: F401
    finally:
        dataclasses.inspect = inspect  # type: ignore[attr-defined]
