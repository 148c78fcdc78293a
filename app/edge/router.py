from fastapi import APIRouter, Request, Response

from app.edge.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, include_in_schema=True)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latency by route, import jobs by status."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE)
