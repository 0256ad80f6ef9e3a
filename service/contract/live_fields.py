"""Field types shared by the GPT-Live request models (`live`, `live_delegation`, `live_tools`).

The Live SDK types distinguish two kinds of optional field, and so do we:

- `Optional[X]` in the SDK (`instructions`, `safety_identifier`, most backend
  settings): absent or `null` both mean "not set", typed `X | None` here.
- a plain `NotRequired` `X` (`store`, `idle_timeout_s`, `wake_policy`, ...): it
  may be left out but `null` is not a value of it, so `null` is refused (400
  naming the field) rather than silently read as "not set". These are typed
  `Omittable[X]`.

Unions whose variants carry a `type` (or `role`) literal are discriminated by
it through `by_literal`, so an error names the variant the caller meant rather
than listing every variant's complaints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar, get_args, get_origin

from pydantic import BaseModel, Discriminator, Field

from service.contract.beta import INT64_MAX, JSON_INTEGER

T = TypeVar("T")

if TYPE_CHECKING:
    Omittable: TypeAlias = T | None
else:

    class Omittable:
        """`Omittable[X]` is `X` with a `None` default: absent is allowed, `null` is not.

        pydantic does not validate defaults, so the field reads `None` when
        left out while an explicit `null` fails `X`'s own validation (the
        error names the field). Type checkers see `X | None`, which is what
        the attribute holds.
        """

        def __class_getitem__(cls, item: Any) -> Any:
            return item


NonNegativeInt: TypeAlias = Annotated[int, Field(ge=0, le=INT64_MAX), JSON_INTEGER]
"""A count or a delay: whole, non-negative, within 64 bits as OpenAI's integers are."""


def _text_or_list(value: Any) -> str:
    """`Text` for a JSON string, `List` for anything else (whose error then says "list")."""
    return "Text" if isinstance(value, str) else "List"


TEXT_OR_LIST = Discriminator(_text_or_list)
"""For `X | list[Y]` with `X` a string type: an error inside the list names the item, alone.

(Left to pydantic's smart union, a bad list item would also be reported as
"should be a string" at the field itself, first.)
"""


def _literals(annotation: Any) -> list[Any]:
    """Every `Literal` value inside an annotation (through `Annotated`, unions, `None`)."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [value for arg in get_args(annotation) for value in _literals(arg)]


def tag_of(model: type[BaseModel]) -> str:
    """The tag a variant is known by inside a `by_literal` union: its class name.

    Class names are not field names (`param_of` drops them from an error's
    location), whereas the literal values (`responses`, `web_search`, ...) look
    like field names and would appear in the dotted `param`.
    """
    return model.__name__


def by_literal(
    *variants: type[BaseModel], field: str = "type", default: type[BaseModel] | None = None
) -> Discriminator:
    """Discriminate a union of models by the literal value of `field`.

    `default` is the variant for a value without `field` (where the SDK makes
    the discriminating literal optional). An unknown or missing value is one
    error at the union's location saying which values are accepted.
    """
    tags: dict[Any, str] = {
        value: tag_of(variant)
        for variant in variants
        for value in _literals(variant.model_fields[field].annotation)
    }
    accepted = ", ".join(repr(value) for value in tags)
    fallback = tag_of(default) if default is not None else None

    def discriminate(value: Any) -> str | None:
        if isinstance(value, Mapping):
            if field not in value:
                return fallback
            kind = value[field]
        else:
            kind = getattr(value, field, None)
        return tags.get(kind) if isinstance(kind, str) else None

    return Discriminator(
        discriminate,
        custom_error_type="invalid_union_variant",
        custom_error_message=f"'{field}' must be one of {accepted}",
    )
