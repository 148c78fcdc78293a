"""Query parameters are checked against the published schema before anything else.

- A name the operation does not take is refused: a misspelt filter
  (`accepting_new_patient=true`) would otherwise be ignored, and a search would
  answer with therapists the caller meant to leave out.
- A parameter that takes one value, given more than once, is refused: the
  framework keeps the last value, so `radius=5&radius=50` would search 50 miles
  while the caller's first value says 5.

Both rules read the operation's parameters from the OpenAPI schema (a list is
`"type": "array"`), so they follow the contract. They apply to the API (`/v1/`):
probes and scrapers of `/healthz`, `/readyz` and `/metrics` and the documentation
pages are not refused for what their tools append.
"""

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from app.errors import FieldError, InvalidInput, field_name

_SHOWN = 10  # unknown names reported one by one; the rest are counted


@dataclass(frozen=True, slots=True)
class _Parameters:
    names: frozenset[str]
    single: frozenset[str]  # those that take one value


async def check_query_parameters(request: Request) -> None:
    """App-wide dependency: a 422 naming each unknown or wrongly repeated parameter."""
    given = request.query_params
    if not given:
        return
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    if template is None or not template.startswith("/v1/"):
        return
    parameters = _parameters(request, template)
    if parameters is None:
        return
    unknown = [name for name in given if name not in parameters.names]
    errors = [_unknown(name, parameters.names) for name in unknown[:_SHOWN]]
    if len(unknown) > _SHOWN:
        more = f"and {len(unknown) - _SHOWN} more parameters this operation does not take"
        errors.append(_error(None, more, "extra_forbidden"))
    if len(given.multi_items()) != len(given):
        counts = Counter(name for name, _ in given.multi_items())
        errors.extend(
            _error(name, "is given more than once; it takes one value", "repeated")
            for name, count in counts.items()
            if count > 1 and name in parameters.single
        )
    if errors:
        raise InvalidInput(errors)


def _unknown(name: str, names: frozenset[str]) -> FieldError:
    if not name:
        return _error(None, "a parameter has no name (as in `&=value`)", "extra_forbidden")
    # Names are lower case: `Zip` and `RADIUS` are matched as `zip` and `radius`.
    close = difflib.get_close_matches(name.lower(), sorted(names), n=1, cutoff=0.75)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    else:
        hint = f"; it takes {', '.join(sorted(names)) or 'none'}"
    return _error(name, f"is not a parameter of this operation{hint}", "extra_forbidden")


def _error(name: str | None, message: str, type_: str) -> FieldError:
    """A problem with one parameter, or (`name` None) with the query as a whole."""
    loc: list[str | int] = ["query"] if name is None else ["query", name]
    return FieldError(loc=loc, field=field_name(loc), message=message, type=type_)


def _parameters(request: Request, template: str) -> _Parameters | None:
    """The operation's query parameters, read from the schema once per application."""
    method = request.method.lower()
    state = request.app.state
    known: dict[tuple[str, str], _Parameters | None] | None = getattr(state, "query_names", None)
    if known is None:
        known = state.query_names = {}
    if (template, method) not in known:
        operation = request.app.openapi().get("paths", {}).get(template, {}).get(method)
        if operation is None:
            known[template, method] = None
        else:
            query = [p for p in operation.get("parameters", ()) if p.get("in") == "query"]
            known[template, method] = _Parameters(
                names=frozenset(p["name"] for p in query),
                single=frozenset(p["name"] for p in query if not _is_array(p.get("schema", {}))),
            )
    return known[template, method]


def _is_array(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(
        _is_array(option) for option in schema.get("anyOf", ())
    )
