from fastapi import APIRouter, Depends
from sqlalchemy import text

from app.queue.broker import redis_answers
from app.schemas import Health
from app.state import AppState, get_state

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(state: AppState = Depends(get_state)) -> Health:
    """``ok``, or ``degraded`` when the database or the broker does not answer. The broker
    is probed directly when it is Redis (0.3 s at most); any broker also counts as down while
    the outbox's last send to it failed. Jobs submitted meanwhile are kept and sent once the
    broker is back: their count is given."""
    try:
        with state.db.session() as session:
            session.execute(text("SELECT 1"))
        database = f"{state.db.backend} ok"
        unsent = state.outbox.unsent()
    except Exception as exc:
        database = f"{state.db.backend} unreachable: {exc.__class__.__name__}"
        unsent = 0
    broker_ok = state.outbox.last_error is None
    if state.broker.url.startswith("redis"):
        broker_ok = redis_answers(state.broker.url)
    broker = f"{state.broker.describe()} {'ok' if broker_ok else 'unreachable'}"
    if unsent:
        broker += f"; {unsent} job message(s) wait to be sent"
    ok = database.endswith(" ok") and broker_ok
    return Health(status="ok" if ok else "degraded", database=database, broker=broker)
