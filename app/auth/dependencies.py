"""Request identity: `Authorization: Bearer <key>` → a `Principal`, or 401."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service as auth_service
from app.auth.service import Principal
from app.db import SessionDep
from app.errors import Unauthorized

# Declared for the OpenAPI security scheme; the header is parsed below for precise errors.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key issued with `ptdir keys create`. Reads need no key.",
)


def get_principal(
    request: Request,
    session: SessionDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("this operation needs an API key: Authorization: Bearer <key>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header; expected 'Bearer <key>'")
    principal = auth_service.authenticate(session, token.strip())
    if principal is None:
        raise Unauthorized("the API key is not valid or has been revoked")
    return principal


def get_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require_admin()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
