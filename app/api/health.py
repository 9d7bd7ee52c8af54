from fastapi import APIRouter, Depends
from sqlalchemy import text

from app.queue.broker import redis_answers
from app.schemas import Health
from app.state import AppState, get_state

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(state: AppState = Depends(get_state)) -> Health:
    try:
        with state.db.session() as session:
            session.execute(text("SELECT 1"))
        database = f"{state.db.backend} ok"
    except Exception as exc:
        database = f"{state.db.backend} unreachable: {exc.__class__.__name__}"
    broker_ok = True
    if state.broker.url.startswith("redis"):
        broker_ok = redis_answers(state.broker.url)
    broker = f"{state.broker.describe()} {'ok' if broker_ok else 'unreachable'}"
    ok = database.endswith(" ok") and broker_ok
    return Health(status="ok" if ok else "degraded", database=database, broker=broker)
