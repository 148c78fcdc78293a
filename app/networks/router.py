from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.auth.dependencies import AdminDep, PrincipalDep
from app.db import ReadSessionDep, SessionDep
from app.errors import WRITE_ERRORS, Problem
from app.fields import MAX_ID, PathId
from app.networks import service
from app.networks.models import PlanType
from app.networks.schemas import (
    ParticipationCreate,
    ParticipationPage,
    ParticipationRead,
    ParticipationUpdate,
    PayerCreate,
    PayerRead,
    PayerUpdate,
    PlanCreate,
    PlanRead,
    PlanUpdate,
)

router = APIRouter(prefix="/v1", tags=["payers and plans"])

_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"model": Problem}}
_CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": Problem, "description": "Name or id already taken"}
}


@router.get("/payers")
def list_payers(session: ReadSessionDep) -> list[PayerRead]:
    """Every payer (insurer or program) in the directory."""
    return [PayerRead.model_validate(p) for p in service.list_payers(session)]


@router.post(
    "/payers", status_code=status.HTTP_201_CREATED, responses={**WRITE_ERRORS, **_CONFLICT}
)
def create_payer(session: SessionDep, _admin: AdminDep, body: PayerCreate) -> PayerRead:
    """Register a payer (admin)."""
    return PayerRead.model_validate(service.create_payer(session, data=body))


@router.get("/payers/{payer_id}", responses=_NOT_FOUND)
def get_payer(session: SessionDep, payer_id: PathId) -> PayerRead:
    """One payer."""
    return PayerRead.model_validate(service.get_payer(session, payer_id))


@router.patch("/payers/{payer_id}", responses={**WRITE_ERRORS, **_NOT_FOUND, **_CONFLICT})
def update_payer(
    session: SessionDep, principal: PrincipalDep, payer_id: PathId, body: PayerUpdate
) -> PayerRead:
    """Change a payer's details (admin or that payer's key)."""
    payer = service.get_payer(session, payer_id)
    principal.require_payer(payer.id)
    return PayerRead.model_validate(service.update_payer(session, payer=payer, data=body))


@router.get("/plans")
def list_plans(
    session: ReadSessionDep,
    payer_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this payer's plans")
    ] = None,
    plan_type: Annotated[PlanType | None, Query(description="Only plans of this type")] = None,
) -> list[PlanRead]:
    """Insurance plans, for filter menus; `?payer_id=` narrows to one payer."""
    plans = service.list_plans(session, payer_id=payer_id, plan_type=plan_type)
    return [PlanRead.model_validate(p) for p in plans]


@router.post(
    "/payers/{payer_id}/plans",
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_ERRORS, **_NOT_FOUND, **_CONFLICT},
)
def create_plan(
    session: SessionDep, principal: PrincipalDep, payer_id: PathId, body: PlanCreate
) -> PlanRead:
    """Add a plan to a payer (admin or that payer's key)."""
    payer = service.get_payer(session, payer_id)
    principal.require_payer(payer.id)
    return PlanRead.model_validate(service.create_plan(session, payer=payer, data=body))


@router.get("/plans/{plan_id}", responses=_NOT_FOUND)
def get_plan(session: SessionDep, plan_id: PathId) -> PlanRead:
    """One plan."""
    return PlanRead.model_validate(service.get_plan(session, plan_id))


@router.patch("/plans/{plan_id}", responses={**WRITE_ERRORS, **_NOT_FOUND, **_CONFLICT})
def update_plan(
    session: SessionDep, principal: PrincipalDep, plan_id: PathId, body: PlanUpdate
) -> PlanRead:
    """Change a plan (admin or the owning payer's key)."""
    plan = service.get_plan_for_write(session, plan_id=plan_id, principal=principal)
    return PlanRead.model_validate(service.update_plan(session, plan=plan, data=body))


@router.delete(
    "/plans/{plan_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**WRITE_ERRORS, **_NOT_FOUND},
)
def delete_plan(session: SessionDep, principal: PrincipalDep, plan_id: PathId) -> None:
    """Delete a plan and its network (admin or the owning payer's key)."""
    plan = service.get_plan_for_write(session, plan_id=plan_id, principal=principal)
    service.delete_plan(session, plan=plan)


@router.get("/plans/{plan_id}/participations", responses=_NOT_FOUND)
def list_participations(
    session: SessionDep,
    plan_id: PathId,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 100,
    after_id: Annotated[
        int,
        Query(ge=0, le=MAX_ID, description="Return entries with an id above this (keyset paging)"),
    ] = 0,
) -> ParticipationPage:
    """The practices in a plan's network, in id order."""
    service.get_plan(session, plan_id)
    items = service.list_participations(session, plan_id=plan_id, after_id=after_id, limit=limit)
    return ParticipationPage(
        items=[ParticipationRead.model_validate(p) for p in items],
        total=service.count_participations(session, plan_id=plan_id),
    )


@router.post(
    "/plans/{plan_id}/participations",
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_ERRORS, **_NOT_FOUND, **_CONFLICT},
)
def add_participation(
    session: SessionDep,
    principal: PrincipalDep,
    plan_id: PathId,
    body: ParticipationCreate,
    response: Response,
) -> ParticipationRead:
    """Put a practice in this plan's network (admin or the owning payer's key)."""
    plan = service.get_plan_for_write(session, plan_id=plan_id, principal=principal)
    participation = service.add_participation(session, plan=plan, data=body)
    response.headers["Location"] = f"/v1/participations/{participation.id}"
    return ParticipationRead.model_validate(participation)


@router.patch("/participations/{participation_id}", responses={**WRITE_ERRORS, **_NOT_FOUND})
def update_participation(
    session: SessionDep,
    principal: PrincipalDep,
    participation_id: PathId,
    body: ParticipationUpdate,
) -> ParticipationRead:
    """Change network terms or record a verification (admin or the owning payer's key)."""
    participation = service.get_participation_for_write(
        session, participation_id=participation_id, principal=principal
    )
    updated = service.update_participation(session, participation=participation, data=body)
    return ParticipationRead.model_validate(updated)


@router.delete(
    "/participations/{participation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**WRITE_ERRORS, **_NOT_FOUND},
)
def delete_participation(
    session: SessionDep, principal: PrincipalDep, participation_id: PathId
) -> None:
    """Take a practice out of a plan's network (admin or the owning payer's key)."""
    participation = service.get_participation_for_write(
        session, participation_id=participation_id, principal=principal
    )
    service.delete_participation(session, participation=participation)
