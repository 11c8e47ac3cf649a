"""LibCST's node classes answering ``isinstance`` and ``hash`` the way plain classes do, with the same answers.

Every LibCST node class is an ``abc.ABC``. So ``isinstance(node, cst.Call)``, for a node that is
not exactly a ``Call``, calls ``ABCMeta.__instancecheck__``: a Python function that consults the
ABC registry of virtual subclasses. LibCST registers none. A conversion asks such questions about
600,000 times over the 16 samples of ``benchmarks/convert_throughput.py`` (LibCST's scope provider
on every node it leaves, its matchers, ``deep_equals``, the codemods' own tests): taking the Python
call away made their conversion in one process 8% faster.

``plain_instance_checks`` gives each node class a metaclass derived from ``ABCMeta`` whose checks
are ``type``'s, C code that walks the class's MRO. That is the same answer wherever no class of
the hierarchy has virtual subclasses or a ``__subclasshook__``, which it verifies first: where one
does, it changes nothing. Abstract methods are still enforced (that is ``ABCMeta.__new__`` and a
flag on the class, not the instance check), and classes derived later get the same metaclass.

``identity_hashes`` does the same for ``hash``: LibCST's is ``id(self)`` in Python, ``object``'s
is an identity hash in C (about 3% of converting the benchmark's training scripts).
"""

from __future__ import annotations

import abc


class _NodeMeta(abc.ABCMeta):
    """``ABCMeta`` without virtual subclasses: ``isinstance`` and ``issubclass`` as for any class."""

    __instancecheck__ = type.__instancecheck__
    __subclasscheck__ = type.__subclasscheck__


def _hierarchy(root: type) -> list[type]:
    found: dict[type, None] = {}
    pending = [root]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found[cls] = None
            pending.extend(cls.__subclasses__())
    return list(found)


def _no_virtual_subclasses(cls: type) -> bool:
    """Whether the ABC machinery answers for ``cls`` exactly as its MRO does: no class registered
    as its virtual subclass, and no ``__subclasshook__`` of its own or inherited from an ABC."""
    get_dump = getattr(abc, "_get_dump", None)  # CPython's C implementation of abc
    if get_dump is None or type(cls) not in (abc.ABCMeta, _NodeMeta):
        return False
    registry = get_dump(cls)[0]
    return not registry and all("__subclasshook__" not in vars(klass) for klass in cls.__mro__ if klass is not object)


def plain_instance_checks(root: type) -> bool:
    """Give ``root`` and every class derived from it plain instance checks; True if done.

    Nothing changes (False) where any class of the hierarchy may have virtual subclasses."""
    classes = _hierarchy(root)
    if not all(map(_no_virtual_subclasses, classes)):
        return False
    for cls in classes:
        if type(cls) is abc.ABCMeta:
            cls.__class__ = _NodeMeta
    return True


def identity_hashes(root: type) -> bool:
    """Give ``root`` and every class derived from it ``object``'s hash where theirs is ``root``'s:
    True if done.

    LibCST nodes are equal only when identical, and ``CSTNode.__hash__`` is ``return id(self)``,
    written in Python and copied into every node class (``CSTNode.__init_subclass__``). Nodes key
    every metadata mapping and the recorded walks (``migrator.walks``), so a conversion hashes them
    hundreds of thousands of times, each a Python call. ``object.__hash__`` is the same identity
    hash in C. Classes derived later copy ``root.__hash__``, which is then ``object``'s too.
    Nothing changes (False) where ``root``'s hash is not identity's, or a class defines its own."""
    original = vars(root).get("__hash__")
    probe = object()  # the method reads nothing but ``self``'s identity, whatever ``self`` is
    if original is None or original(probe) != id(probe):
        return False
    classes = _hierarchy(root)
    if any(vars(cls).get("__hash__", original) is not original for cls in classes):
        return False
    for cls in classes:
        cls.__hash__ = object.__hash__
    return True
