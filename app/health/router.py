from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.errors import Problem, ServiceUnavailable
from app.schemas import ReadModel

router = APIRouter(tags=["health"])


class Health(ReadModel):
    status: str


@router.get("/healthz")
def healthz() -> Health:
    """The process is alive (does not touch the database)."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Problem, "description": "Database unreachable"}})
def readyz(request: Request) -> Health:
    """The database answers a query; 503 when it does not."""
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        raise ServiceUnavailable("the database is not reachable") from error
    return Health(status="ready")
