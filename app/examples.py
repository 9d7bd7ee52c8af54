"""Small example initial conditions shipped in ``static/examples``, registered on start so
the first screen has something to roll out at once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import InitialCondition
from app.ic_store import store_initial_condition

STATIC = Path(__file__).resolve().parents[1] / "static"
EXAMPLES = STATIC / "examples"
# file name → flow
SHIPPED = {"example_ns2d_forced_64.npy": "ns2d-forced"}


def register_examples(db: Database, artifacts: ArtifactStore) -> list[str]:
    """Store each shipped example once (by name); returns the names newly stored."""
    added = []
    with db.session() as session:
        present = set(session.scalars(select(InitialCondition.name)))
    for name, flow in SHIPPED.items():
        path = EXAMPLES / name
        if name in present or not path.exists():
            continue
        store_initial_condition(db, artifacts, flow, name, path.read_bytes())
        added.append(name)
    return added
