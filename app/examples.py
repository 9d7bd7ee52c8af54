"""What ships in ``static/``, registered on start so the first screen is useful at once:
example initial conditions (``static/examples``) and a small demo model
(``static/demo_model``: safetensors weights, their config, a card with its metrics and how
it was trained, and ``make_demo_model.py``, the script that made it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import select

from app.artifacts import ArtifactStore
from app.db.session import Database
from app.db.tables import InitialCondition, Model, new_id
from app.services.initial_conditions import store_initial_condition
from models.registry import make_config

STATIC = Path(__file__).resolve().parents[1] / "static"
EXAMPLES = STATIC / "examples"
DEMO_MODEL = STATIC / "demo_model"
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


def register_demo_model(db: Database, artifacts: ArtifactStore) -> str | None:
    """Copy the shipped demo model into the artifact store once; returns its new id."""
    card_path = DEMO_MODEL / "card.json"
    if not card_path.exists():
        return None
    card = json.loads(card_path.read_text())
    with db.session() as session:
        if session.scalar(select(Model.id).where(Model.name == card["name"])):
            return None
    info = json.loads((DEMO_MODEL / "config.json").read_text())
    model_id = new_id()
    relative = artifacts.model_dir(model_id)
    target = artifacts.resolve(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DEMO_MODEL, target, ignore=shutil.ignore_patterns("card.json", "*.py"))
    meta = info["metadata"]
    with db.session() as session:
        session.add(
            Model(
                id=model_id,
                name=card["name"],
                arch=info["arch"],
                flow=meta["flow"],
                # Completed with today's defaults and key names (the shipped file predates
                # the zoo's config schema; the model class reads both).
                config=make_config(info["arch"], info["config"]).to_dict(),
                metrics=card["metrics"],
                parameter_count=info["parameter_count"],
                resolution=meta["resolution"],
                interval=meta["interval"],
                dataset_id=None,
                path=relative,
            )
        )
        session.commit()
    return model_id
