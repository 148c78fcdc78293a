"""Payers, plans and network participations."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.db import flush_or_conflict
from app.errors import InvalidInput, NotFound
from app.networks.models import Participation, Payer, Plan, PlanType
from app.networks.schemas import (
    ParticipationCreate,
    ParticipationUpdate,
    PayerCreate,
    PayerUpdate,
    PlanCreate,
    PlanUpdate,
)
from app.schemas import patch_values
from app.therapists.models import Practice


def list_payers(session: Session) -> list[Payer]:
    return list(session.scalars(select(Payer).order_by(Payer.name)))


def get_payer(session: Session, payer_id: int) -> Payer:
    payer = session.get(Payer, payer_id)
    if payer is None:
        raise NotFound(f"payer {payer_id} does not exist")
    return payer


def create_payer(session: Session, *, data: PayerCreate) -> Payer:
    payer = Payer(
        name=data.name, website=str(data.website) if data.website else None, phone=data.phone
    )
    session.add(payer)
    flush_or_conflict(session, f"a payer named {data.name!r} already exists")
    return payer


def update_payer(session: Session, *, payer: Payer, data: PayerUpdate) -> Payer:
    values = patch_values(data, not_null=("name",))
    if values.get("website") is not None:
        values["website"] = str(data.website)
    for name, value in values.items():
        setattr(payer, name, value)
    flush_or_conflict(session, f"a payer named {payer.name!r} already exists")
    return payer


def list_plans(
    session: Session, *, payer_id: int | None = None, plan_type: PlanType | None = None
) -> list[Plan]:
    statement = select(Plan).order_by(Plan.payer_id, Plan.name)
    if payer_id is not None:
        statement = statement.where(Plan.payer_id == payer_id)
    if plan_type is not None:
        statement = statement.where(Plan.plan_type == plan_type)
    return list(session.scalars(statement))


def get_plan(session: Session, plan_id: int) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id} does not exist")
    return plan


def get_plan_for_write(session: Session, *, plan_id: int, principal: Principal) -> Plan:
    plan = get_plan(session, plan_id)
    principal.require_payer(plan.payer_id)
    return plan


def _plan_conflict(plan: Plan) -> str:
    return (
        f"plan {plan.name!r} or HIOS id {plan.hios_plan_id!r} already exists"
        if plan.hios_plan_id
        else f"payer {plan.payer_id} already has a plan named {plan.name!r}"
    )


def create_plan(session: Session, *, payer: Payer, data: PlanCreate) -> Plan:
    plan = Plan(payer_id=payer.id, **data.model_dump())
    session.add(plan)
    flush_or_conflict(session, _plan_conflict(plan))
    return plan


def update_plan(session: Session, *, plan: Plan, data: PlanUpdate) -> Plan:
    values = patch_values(data, not_null=("name", "plan_type"))
    for name, value in values.items():
        setattr(plan, name, value)
    if plan.plan_type is PlanType.MARKETPLACE and not plan.hios_plan_id:
        raise InvalidInput.at(["body", "hios_plan_id"], "required for a marketplace plan")
    flush_or_conflict(session, _plan_conflict(plan))
    return plan


def delete_plan(session: Session, *, plan: Plan) -> None:
    """Deletes the plan and, with it, its network participations."""
    session.delete(plan)
    session.flush()


def list_participations(
    session: Session, *, plan_id: int, after_id: int, limit: int
) -> list[Participation]:
    statement = (
        select(Participation)
        .where(Participation.plan_id == plan_id, Participation.id > after_id)
        .order_by(Participation.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def count_participations(session: Session, *, plan_id: int) -> int:
    statement = select(func.count()).where(Participation.plan_id == plan_id)
    return session.scalar(statement) or 0


def get_participation_for_write(
    session: Session, *, participation_id: int, principal: Principal
) -> Participation:
    participation = session.get(Participation, participation_id)
    if participation is None:
        raise NotFound(f"participation {participation_id} does not exist")
    plan_payer = session.scalar(select(Plan.payer_id).where(Plan.id == participation.plan_id))
    principal.require_payer(plan_payer or 0)
    return participation


def add_participation(session: Session, *, plan: Plan, data: ParticipationCreate) -> Participation:
    if session.get(Practice, data.practice_id) is None:
        raise InvalidInput.at(
            ["body", "practice_id"], f"practice {data.practice_id} does not exist"
        )
    participation = Participation(plan_id=plan.id, **data.model_dump())
    session.add(participation)
    flush_or_conflict(
        session, f"practice {data.practice_id} is already in the network of plan {plan.id}"
    )
    return participation


def update_participation(
    session: Session, *, participation: Participation, data: ParticipationUpdate
) -> Participation:
    values: dict[str, Any] = patch_values(data)
    for name, value in values.items():
        setattr(participation, name, value)
    if (
        participation.effective_from
        and participation.effective_to
        and participation.effective_to < participation.effective_from
    ):
        raise InvalidInput.at(["body", "effective_to"], "effective_to is before effective_from")
    session.flush()
    return participation


def delete_participation(session: Session, *, participation: Participation) -> None:
    session.delete(participation)
    session.flush()
