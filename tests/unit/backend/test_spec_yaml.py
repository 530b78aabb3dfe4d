"""The one YAML reader of specs: safe, and bounded in nesting depth and in values once aliases expand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prunespec.spec import load_spec
from prunespec.spec_yaml import MAX_SPEC_DEPTH, MAX_SPEC_NODES, SpecTooComplex, load_yaml

#: 10 aliases of 10 aliases ... five levels deep: 100,000 values from a few lines of YAML.
ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcd", "bcde", strict=True)
)


def _flow(depth: int) -> str:
    """A JSON/YAML flow document ``depth`` lists deep (depth 1 is ``[]``)."""
    return "[" * depth + "]" * depth


def _block(depth: int) -> str:
    """A block-style YAML document of ``depth`` nested mappings."""
    return "".join(" " * level + "a:\n" for level in range(depth - 1)) + " " * (depth - 1) + "a: 1\n"


def _alias_chain(depth: int) -> str:
    """Nesting built from aliases: each line one level deeper than the previous, never deep on the page."""
    return "l0: &l0 [1]\n" + "".join(f"l{i}: &l{i} [*l{i - 1}]\n" for i in range(1, depth))


def test_a_spec_like_document_loads_as_safe_load_would() -> None:
    text = "name: x\nmodel: {input_shape: [2], layers: [{type: dense, units: 3, kernel_size: [3, 3]}]}\n"

    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize("shape", [_flow, _block])
def test_nesting_up_to_the_limit_loads(shape: object) -> None:
    assert callable(shape)
    assert load_yaml(shape(MAX_SPEC_DEPTH)) is not None


@pytest.mark.parametrize(
    ("shape", "depth"),
    [
        (_flow, MAX_SPEC_DEPTH + 1),
        (_flow, 500),
        (_flow, 100_000),
        (_block, MAX_SPEC_DEPTH + 1),
        (_block, 500),
        (_alias_chain, MAX_SPEC_DEPTH + 1),
        (_alias_chain, 3000),
    ],
)
def test_nesting_past_the_limit_is_refused_without_recursing(shape: object, depth: int) -> None:
    assert callable(shape)
    with pytest.raises(SpecTooComplex, match=f"nested more than {MAX_SPEC_DEPTH} levels deep"):
        load_yaml(shape(depth))


def test_an_alias_bomb_is_refused() -> None:
    with pytest.raises(SpecTooComplex, match=f"at most {MAX_SPEC_NODES:,} values"):
        load_yaml(ALIAS_BOMB)


def test_a_chain_of_merge_keys_is_refused_without_recursing() -> None:
    text = "m0: &m0 {k: 1}\n" + "".join(f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: 1}}\n" for i in range(1, 3000))

    with pytest.raises(SpecTooComplex):
        load_yaml(text)


def test_load_spec_reads_through_the_bounded_reader(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(_flow(500), encoding="utf-8")

    with pytest.raises(SpecTooComplex, match="deep.yaml: .*nested more than"):
        load_spec(path)
