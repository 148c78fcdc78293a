"""Base classes for request and response bodies."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from app.errors import InvalidInput


class WriteModel(BaseModel):
    """A request body: unknown fields are refused, so nothing is mass-assigned."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def patch_values(body: WriteModel, *, not_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields a PATCH body set; a required field cannot be set to null."""
    values = body.model_dump(exclude_unset=True)
    for name in not_null:
        if name in values and values[name] is None:
            raise InvalidInput.at(["body", name], f"{name} cannot be null")
    return values
