from fastapi import APIRouter, Response

from app.db import ReadSessionDep
from app.errors import Problem
from app.search import service
from app.search.params import SearchQueryDep
from app.search.schemas import SearchResults

router = APIRouter(prefix="/v1/search", tags=["search"])


@router.get(
    "/therapists",
    response_model=SearchResults,
    responses={
        422: {"model": Problem, "description": "An invalid or unknown parameter, named in `errors`"}
    },
    openapi_extra={
        "x-example-requests": [
            {
                "summary": "Neurology PT accepting Medicare Part B within 10 miles of ZIP 60614",
                "request": "/v1/search/therapists?zip=60614&radius=10&specialty=neurology"
                "&plan_id=1&accepting_new_patients=true",
            }
        ]
    },
)
def search_therapists(session: ReadSessionDep, query: SearchQueryDep) -> Response:
    """Therapists near a place who match every filter, nearest first, with facet counts.

    Example: a neurology PT accepting Medicare Part B (plan 1 in the demo data)
    within 10 miles of ZIP 60614 —
    `/v1/search/therapists?zip=60614&radius=10&specialty=neurology&plan_id=1`
    `&accepting_new_patients=true`
    """
    results = service.search_therapists(session, query)
    # Serialised once, here: the results are built from typed columns, so FastAPI's
    # second validation pass (dump, validate, dump) would only cost time.
    return Response(results.model_dump_json(), media_type="application/json")
