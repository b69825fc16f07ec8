"""``/api/v1/health``: whether the API can do its work: up, its state database reachable (at
which schema revision), which executor runs the jobs, and, for the executor, whether its broker
answers and how many workers do. 503 only when the database cannot be reached: without it nothing
works. Without a broker or a worker jobs are accepted and wait, so that is ``degraded``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

import portl
from portl.service.api.schemas import Health

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", response_model=Health, summary="Health of the service",
            responses={503: {"model": Health, "description": "The state database cannot be reached."}})
def health(request: Request) -> Health | JSONResponse:
    """No API key needed: for load balancers and monitors."""
    from portl.service.monitor import census

    state = request.app.state
    try:
        with state.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        reachable = True
    except Exception:  # any failure to reach it is the same answer: unavailable
        reachable = False
    running = census(state.executor)
    degraded = running.broker == "unreachable" or running.workers == 0
    answer = Health(status="unavailable" if not reachable else "degraded" if degraded else "ok",
                    version=portl.__version__, database="reachable" if reachable else "unreachable",
                    database_revision=state.store.migrated.after if reachable else None,
                    executor=executor_kind(state.executor), broker=running.broker, workers=running.workers)
    return answer if reachable else JSONResponse(answer.model_dump(), 503)


def executor_kind(executor: object) -> str:
    """What runs the jobs, as health answers it: ``in-process``, ``celery``..."""
    kind = getattr(executor, "kind", None)
    if isinstance(kind, str):
        return kind
    return "in-process" if type(executor).__name__ == "InProcessExecutor" else type(executor).__name__
