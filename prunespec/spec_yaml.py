"""The one reader of YAML (and JSON) spec text: PyYAML's safe loader, bounded before anything is built.

A spec is a few levels deep and a few hundred values. Text is refused, with :class:`SpecTooComplex`, when
its collections nest more than :data:`MAX_SPEC_DEPTH` deep (PyYAML composes recursively: ~500 levels in
1 KB of ``[[[...]]]`` would raise ``RecursionError``) or when it would hold more than
:data:`MAX_SPEC_NODES` values once aliases and merge keys are expanded ("billion laughs"). Depth is
checked while composing, size and depth of the composed graph (aliases included) before constructing,
so neither a deep document nor an alias bomb is ever built in memory.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

#: Deepest nesting of mappings and lists a spec may use (a real spec uses about six).
MAX_SPEC_DEPTH = 32
#: Most values a spec may hold once YAML aliases are expanded.
MAX_SPEC_NODES = 50_000


class SpecTooComplex(ValueError):
    """Spec text nested too deep, holding too many values once aliases expand, or containing itself."""


def _too_deep() -> SpecTooComplex:
    return SpecTooComplex(f"the spec is nested more than {MAX_SPEC_DEPTH} levels deep")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that stops composing past :data:`MAX_SPEC_DEPTH` nested collections."""

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:  # the anchor name (stubs say dict)
        self.depth += 1
        if self.depth > MAX_SPEC_DEPTH:
            raise _too_deep()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> MappingNode:  # the anchor name (stubs say dict)
        self.depth += 1
        if self.depth > MAX_SPEC_DEPTH:
            raise _too_deep()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self.depth -= 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_graph(root: Node) -> None:
    """Refuse a composed document too large or too deep once its aliases are followed.

    Sizes and depths are computed once per node (aliases share nodes), without recursion.

    Raises:
        SpecTooComplex: more than :data:`MAX_SPEC_NODES` values, nesting deeper than
            :data:`MAX_SPEC_DEPTH`, or a collection that contains itself.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            collection = isinstance(node, SequenceNode | MappingNode)
            depth[key] = int(collection) + max((depth[id(child)] for child in children), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_SPEC_NODES:
                raise SpecTooComplex(
                    f"a spec holds at most {MAX_SPEC_NODES:,} values once aliases are expanded"
                )
            if depth[key] > MAX_SPEC_DEPTH:
                raise _too_deep()
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise SpecTooComplex("the spec contains itself (an alias to an enclosing value)")
            if id(child) not in size:
                stack.append((child, False))


def load_yaml(text: str) -> Any:
    """The document in YAML or JSON ``text``, as ``yaml.safe_load`` reads it, within the bounds above.

    Args:
        text: one YAML document (JSON is YAML).

    Returns:
        The parsed value (``None`` for an empty document).

    Raises:
        yaml.YAMLError: the text is not YAML (``MarkedYAMLError`` names the line and column).
        SpecTooComplex: the document is nested too deep or too large once aliases are expanded.
    """
    loader = _BoundedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # a safety net under the depth bound (a deep run of tags or anchors)
            raise _too_deep() from None
        if node is None:
            return None
        check_graph(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
