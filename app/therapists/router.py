from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from app.auth.dependencies import AdminDep
from app.db import SessionDep
from app.errors import WRITE_ERRORS, Problem
from app.fields import Npi, PathId
from app.therapists import service
from app.therapists.schemas import TherapistCreate, TherapistPage, TherapistRead, TherapistUpdate

router = APIRouter(prefix="/v1/therapists", tags=["therapists"])


EXAMPLE = {
    "npi": "1234567893",
    "first_name": "Ana",
    "last_name": "García",
    "credentials": ["PT", "DPT"],
    "gender": "female",
    "specialties": [{"code": "2251N0400X", "primary": True}, {"code": "2251G0304X"}],
    "certifications": ["NCS"],
    "conditions": ["diabetic-neuropathy", "peripheral-neuropathy", "balance-fall-risk"],
    "services": ["balance-training", "strengthening", "aerobic-conditioning"],
    "languages": ["en", "es"],
    "practices": [
        {
            "location": {
                "name": "Lakeview Neuro Rehab",
                "address_line1": "2300 N Lincoln Ave",
                "address_line2": "Suite 200",
                "city": "Chicago",
                "state": "IL",
                "zip": "60614",
                "phone": "(312) 555-0147",
                "fax": "312-555-0148",
                "facility_type": "private_practice",
                "accessibility": ["wheelchair_accessible"],
            },
            "accepting_new_patients": True,
            "telehealth": True,
            "participations": [
                {"plan_id": 1, "network_tier": "preferred", "verified_at": "2026-11-01T09:30:00Z"}
            ],
        }
    ],
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_ERRORS, 409: {"model": Problem, "description": "The NPI is taken"}},
)
def create_therapist(
    session: SessionDep,
    _admin: AdminDep,
    body: Annotated[
        TherapistCreate,
        Body(openapi_examples={"neurology_pt": {"summary": "A neuro PT", "value": EXAMPLE}}),
    ],
    response: Response,
) -> TherapistRead:
    """Create a therapist with practices, locations and plan participations (admin)."""
    therapist = service.create_therapist(session, data=body)
    response.headers["Location"] = f"/v1/therapists/{therapist.id}"
    return service.to_read(therapist)


@router.get("", responses={422: {"model": Problem, "description": "Invalid NPI or cursor"}})
def list_therapists(
    session: SessionDep,
    npi: Annotated[Npi | None, Query(description="Find the therapist with this NPI")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page")
    ] = None,
) -> TherapistPage:
    """List therapists in id order, or look one up by NPI (`?npi=`)."""
    items, next_cursor = service.list_therapists(session, npi=npi, cursor=cursor, limit=limit)
    return TherapistPage(items=[service.to_read(t) for t in items], next_cursor=next_cursor)


@router.get("/{therapist_id}", responses={404: {"model": Problem}})
def get_therapist(session: SessionDep, therapist_id: PathId) -> TherapistRead:
    """A therapist with every practice, its location and plan participations."""
    return service.to_read(service.get_therapist(session, therapist_id))


@router.patch(
    "/{therapist_id}",
    responses={**WRITE_ERRORS, 404: {"model": Problem}},
)
def update_therapist(
    session: SessionDep, _admin: AdminDep, therapist_id: PathId, body: TherapistUpdate
) -> TherapistRead:
    """Change a therapist (admin). A list that is given replaces the current one."""
    therapist = service.update_therapist(session, therapist_id=therapist_id, data=body)
    return service.to_read(therapist)


@router.delete(
    "/{therapist_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**WRITE_ERRORS, 404: {"model": Problem}},
)
def delete_therapist(session: SessionDep, _admin: AdminDep, therapist_id: PathId) -> None:
    """Delete a therapist with its practices and participations (admin)."""
    service.delete_therapist(session, therapist_id=therapist_id)
