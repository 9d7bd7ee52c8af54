"""Where each artifact lives under the artifact root. Paths in the database are relative
to the root, so a shared volume can be mounted at different places on different machines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def resolve(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root not in path.parents and path != self.root:
            raise ValueError(f"artifact path {relative!r} escapes the artifact root")
        return path

    def initial_condition(self, ic_id: str) -> str:
        return f"initial_conditions/{ic_id}.npy"

    def dataset(self, dataset_id: str) -> str:
        return f"datasets/{dataset_id}.h5"

    def model_dir(self, model_id: str) -> str:
        return f"models/{model_id}"

    def training_checkpoints(self, job_id: str) -> str:
        """Per-epoch training state of one job (kept after a cancel, resumed on redelivery)."""
        return f"checkpoints/{job_id}"

    def rollout(self, rollout_id: str) -> str:
        return f"rollouts/{rollout_id}.h5"

    @contextmanager
    def atomic_write(self, relative: str) -> Iterator[Path]:
        """Yield a temporary path next to the target; it replaces the target only on success,
        so a reader (or a failed request) never sees a half-written file."""
        target = self.resolve(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            yield Path(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the app and workers may be other users
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
