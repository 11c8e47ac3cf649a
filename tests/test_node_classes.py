"""LibCST's node classes with plain instance checks give the ABC machinery's answers (migrator.node_classes)."""

from __future__ import annotations

import abc
from pathlib import Path

import libcst as cst
import pytest

from migrator import codemod, node_classes

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "legacy" / "lightning_trainer.py"


def _all_node_classes() -> list[type]:
    return node_classes._hierarchy(cst.CSTNode)


@pytest.mark.skipif(not codemod.LIBCST_FAST, reason="the swap is made on the checked LibCST release only")
def test_every_node_class_has_plain_checks_with_the_abc_answers():
    classes = _all_node_classes()
    assert len(classes) > 300
    assert {type(cls) for cls in classes} == {node_classes._NodeMeta}
    module = cst.parse_module(SAMPLE.read_bytes())
    seen: dict[type, cst.CSTNode] = {}

    class Gather(cst.CSTVisitor):
        def on_visit(self, node):
            seen.setdefault(type(node), node)
            return True

    module.visit(Gather())
    nodes = list(seen.values()) + [1, "x", None, cst.MaybeSentinel.DEFAULT]
    assert len(seen) > 40
    asked = 0
    for cls in classes:
        for node in nodes:
            assert isinstance(node, cls) is abc.ABCMeta.__instancecheck__(cls, node), (node, cls)
            asked += 1
        for other in classes[:80]:
            assert issubclass(other, cls) is abc.ABCMeta.__subclasscheck__(cls, other), (other, cls)
    assert asked > 10_000


@pytest.mark.skipif(not codemod.LIBCST_FAST, reason="the swap is made on the checked LibCST release only")
def test_visitor_classes_have_plain_checks_with_the_abc_answers():
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor
    from libcst.metadata import ScopeProvider

    classes = node_classes._hierarchy(cst.CSTVisitor) + node_classes._hierarchy(cst.CSTTransformer)
    assert {type(cls) for cls in classes} == {node_classes._NodeMeta}
    objects = [cst.CSTVisitor(), cst.CSTTransformer(), ScopeProvider(), AddImportsVisitor(CodemodContext()), cst.Name("x"), 1]
    for cls in classes:
        for obj in objects:
            assert isinstance(obj, cls) is abc.ABCMeta.__instancecheck__(cls, obj), (obj, cls)


def _hierarchy_with(make_virtual: bool, hook: bool):
    class Base(abc.ABC):
        @abc.abstractmethod
        def f(self): ...

    class Child(Base):
        def f(self):
            return 1

    if make_virtual:
        Child.register(int)
    if hook:
        Base.__subclasshook__ = classmethod(lambda cls, sub: True if sub is str else NotImplemented)
    return Base, Child


@pytest.mark.parametrize("make_virtual, hook", [(True, False), (False, True)])
def test_a_hierarchy_with_virtual_subclasses_is_left_to_abc(make_virtual, hook):
    base, child = _hierarchy_with(make_virtual, hook)
    assert node_classes.plain_instance_checks(base) is False
    assert type(base) is abc.ABCMeta and type(child) is abc.ABCMeta
    assert isinstance(1 if make_virtual else "s", base)


def test_plain_checks_keep_abstract_methods_and_pass_to_later_classes():
    base, child = _hierarchy_with(False, False)
    assert node_classes.plain_instance_checks(base) is True
    assert type(base) is node_classes._NodeMeta and type(child) is node_classes._NodeMeta
    with pytest.raises(TypeError, match="abstract"):
        base()
    assert isinstance(child(), base) and not isinstance(1, base)

    class Later(child):
        pass

    assert type(Later) is node_classes._NodeMeta
    assert isinstance(Later(), base) and issubclass(Later, child)


def _identity_hierarchy(own_hash: bool = False):
    class Node:
        def __hash__(self) -> int:
            return id(self)

        def __init_subclass__(cls, **kwargs) -> None:  # as CSTNode copies its hash into each class
            super().__init_subclass__(**kwargs)
            cls.__hash__ = Node.__hash__

    class Leaf(Node):
        pass

    if own_hash:
        class Odd(Node):
            pass

        Odd.__hash__ = lambda self: 7  # type: ignore[method-assign]
    return Node, Leaf


def test_node_classes_hash_by_identity_in_c():
    if codemod.LIBCST_FAST:  # the engine's fast path made the change at import
        assert all(vars(kind).get("__hash__", object.__hash__) is object.__hash__
                   for kind in node_classes._hierarchy(cst.CSTNode))
    node, leaf = _identity_hierarchy()
    assert node_classes.identity_hashes(node) is True
    assert leaf.__hash__ is object.__hash__ and node.__hash__ is object.__hash__
    a, b = leaf(), leaf()
    assert hash(a) == hash(a) and len({a: 1, b: 2}) == 2 and {a: 1}.get(b) is None

    class Later(leaf):
        pass

    assert Later.__hash__ is object.__hash__


def test_a_hierarchy_with_a_hash_of_its_own_is_left_alone():
    node, leaf = _identity_hierarchy(own_hash=True)
    assert node_classes.identity_hashes(node) is False
    assert leaf.__hash__ is vars(node)["__hash__"]

    class ByValue:
        def __hash__(self) -> int:
            return 1

    assert node_classes.identity_hashes(ByValue) is False
