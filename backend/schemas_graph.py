"""Response bodies about a model's graph: its dependency groups (``prunespec.groups``) as the API shows them.

``backend.schemas`` imports these (they take part in its spec preview), so this module imports nothing
from it; its base has the same configuration as ``backend.schemas.Schema``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from prunespec.groups import Group


class Schema(BaseModel):
    """Base of these response bodies: built from attributes, immutable (as ``backend.schemas.Schema``)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class ConsumerOut(Schema):
    """A layer whose input channels shrink with a group.

    Attributes:
        layer: the consuming layer (dense, conv2d, conv2d_transpose or separable_conv2d).
        offset: where the group's channels start among that layer's input channels (after a
            concatenation, the channels of the groups before it).
        flatten: the flatten between the group and this layer (its inputs then run position-major);
            None when there is none.
    """

    layer: str
    offset: int
    flatten: str | None


class GroupOut(Schema):
    """A dependency group: channels that are removed together so that the graph stays valid.

    Attributes:
        name: the group's name, its first producer's layer name (the key of its widths).
        width: its channels.
        producers: layers whose output channels are the group's channels.
        members: layers the channels flow through one by one (batch norm, activations, pooling, add,
            depthwise convolutions, concatenations, ...).
        consumers: layers whose input channels shrink with it.
        fixed: why the group cannot shrink ("feeds the model's output", "crosses a reshape", ...);
            None when it is prunable.
    """

    name: str
    width: int
    producers: list[str]
    members: list[str]
    consumers: list[ConsumerOut]
    fixed: str | None

    @classmethod
    def of(cls, group: Group) -> GroupOut:
        """The API's view of a group from ``prunespec.groups``."""
        return cls(
            name=group.name,
            width=group.width,
            producers=list(group.producers),
            members=list(group.members),
            consumers=[
                ConsumerOut(layer=one.layer, offset=one.offset, flatten=one.flatten)
                for one in group.consumers
            ],
            fixed=group.fixed,
        )
