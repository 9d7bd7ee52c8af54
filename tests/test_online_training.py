"""The online training loop (models/online_training.py) fed in-process by solver windows of
ns2d-forced at 32²: it learns (beats persistence on held-out trajectories), drops windows
sent twice, counts distinct trajectories, never takes more windows than its buffer has room
for, ends when a FIFO stream runs dry, and resumes from its checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from models.online_training import OnlineConfig, StreamLedger, train_online
from models.registry import build_model
from models.train_state import latest_directory
from models.training import TrainConfig, TrainingStopped
from physics.flows import get_flow
from physics.resample import spectral_truncate

N = 32
SNAPSHOTS = 6
CONFIG = {"width": 8, "modes": 6, "n_layers": 2, "channels": 1}


def trajectories(seed: int, count: int) -> torch.Tensor:
    """``(count, SNAPSHOTS, 1, N, N)`` of ns2d-forced from the flow's random initial fields,
    one snapshot per unit time, as a generate job makes them."""
    flow = get_flow("ns2d-forced")
    solver = flow.make_solver(N)
    seeds = [seed * 1_000_003 + i for i in range(count)]
    w = torch.cat([flow.random_initial_condition(N, 1, seed=s) for s in seeds])
    frames = [spectral_truncate(w, N)]
    for _ in range(SNAPSHOTS - 1):
        w = solver.advance(w, 1.0)
        frames.append(spectral_truncate(w, N))
    return torch.stack(frames, dim=1).float()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return trajectories(1, 24), trajectories(0, 4)


class ListSource:
    """Windows of given trajectories, in trajectory order, with some sent twice."""

    def __init__(self, train: torch.Tensor, window: int, repeat: tuple[int, ...] = ()):
        self.items = []
        for i in range(train.shape[0]):
            for start in range(train.shape[1] - window + 1):
                self.items.append((i, start, train[i, start : start + window].clone()))
        for i in repeat:  # a replaced producer sends trajectory i again from its first window
            self.items += [item for item in self.items if item[0] == i]
        self.pulled = 0
        self.largest_ask = 0
        self.ledger = None

    def bind(self, ledger: StreamLedger) -> None:
        self.ledger = ledger

    def pull(self, n: int):
        self.largest_ask = max(self.largest_ask, n)
        out, self.items = self.items[:n], self.items[n:]
        self.pulled += len(out)
        return out

    def finished(self) -> bool:
        return not self.items

    def wait(self, seconds: float) -> None:
        pass

    def status(self) -> dict:
        return {"stream_fill": len(self.items)}


def model():
    torch.manual_seed(0)
    return build_model("fno2d", CONFIG)


def test_online_training_learns_and_counts_what_it_saw(data):
    train, validation = data
    source = ListSource(train, window=2, repeat=(3, 7))
    events = []
    result = train_online(
        model(),
        source,
        validation,
        TrainConfig(epochs=4, batch_size=8, lr=1e-2, events_every=5, seed=0),
        OnlineConfig(steps_per_epoch=15, buffer_size=40, buffer_policy="reservoir", min_fill=20),
        on_event=events.append,
    )
    assert result.steps == 60 and not result.ended_early
    print(f"online: val {result.val_rel_l2:.4f}, persistence {result.persistence_rel_l2:.4f}")
    assert result.val_rel_l2 < 0.8 * result.persistence_rel_l2
    assert [e["epoch"] for e in result.history] == [1, 2, 3, 4]
    # Trajectories 3 and 7 were sent twice: their second copies (5 windows each) dropped.
    ledger = source.ledger
    assert ledger.duplicates == 10 and ledger.received == 24 * 5
    assert result.stream["unique_trajectories"] == 24
    assert result.stream["complete_trajectories"] == 24
    online = [e for e in events if e["type"] == "online" and e["stage"] == "training"]
    assert online and all(0 < e["buffer_fill"] <= 40 for e in online)
    assert all(e["consumed_per_s"] > 0 for e in online)
    # Never asked for more windows than the buffer had room for.
    assert source.largest_ask <= 40
    assert result.stream["consumed"] == 60 * 8


def test_a_fifo_stream_ends_the_run_when_every_window_was_used(data):
    train, validation = data
    source = ListSource(train[:6], window=2)
    result = train_online(
        model(),
        source,
        validation,
        TrainConfig(epochs=10, batch_size=8, lr=1e-2, seed=0),
        OnlineConfig(steps_per_epoch=5, buffer_size=12, buffer_policy="fifo", min_fill=8),
    )
    # 6 trajectories × 5 windows = 30 windows, each drawn once in batches of 8: 4 steps.
    assert result.ended_early and result.steps == 4
    assert result.stream["consumed"] == 30
    assert len(result.history) == 1 and "drawn every window" in result.notes[0]


def test_a_stopped_run_resumes_from_its_checkpoint(data, tmp_path):
    train, validation = data
    config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, seed=0)
    online = OnlineConfig(
        steps_per_epoch=10, buffer_size=30, buffer_policy="reservoir", min_fill=16
    )
    epochs_seen = []

    def stop_after_first_epoch() -> bool:
        return len(epochs_seen) >= 1

    with pytest.raises(TrainingStopped):
        train_online(
            model(),
            ListSource(train, window=2),
            validation,
            config,
            online,
            on_event=lambda e: epochs_seen.append(e) if e["type"] == "epoch" else None,
            should_stop=stop_after_first_epoch,
            checkpoint_dir=tmp_path,
        )
    saved = json.loads((latest_directory(tmp_path) / "state.json").read_text())
    received_before = saved["extra"]["ledger"]["received"]
    assert 0 < received_before < 120
    events = []
    source = ListSource(train, window=2)
    result = train_online(
        model(), source, validation, config, online, on_event=events.append, checkpoint_dir=tmp_path
    )
    assert events[0] == {"type": "resumed", "epoch": 1, "step": 10}
    assert result.resumed_from_epoch == 1 and result.steps == 30
    assert [e["epoch"] for e in result.history] == [1, 2, 3]
    assert result.history[0] == epochs_seen[0]
    # The ledger came back with the checkpoint: the windows it had received are duplicates
    # now (the fresh source sends everything again from the start), the rest are new.
    assert source.ledger.duplicates == received_before
    assert source.ledger.received == 120 == source.pulled


def test_the_ledger_drops_repeats_and_finds_where_a_replacement_starts():
    ledger = StreamLedger(windows_per_trajectory=3)
    assert [ledger.accept(0, s) for s in (0, 1, 0, 2, 2)] == [True, True, False, True, False]
    assert ledger.accept(1, 0) and ledger.accept(1, 2)  # window 1 was lost: a gap
    assert ledger.gaps == 1 and ledger.duplicates == 2 and ledger.received == 5
    assert ledger.accept(1, 3) is False  # past the trajectory's last window
    assert ledger.first_incomplete(0, 3) == 2  # trajectory 0 and 1 complete, 2 never seen
    assert ledger.first_incomplete(0, 2) is None
    assert StreamLedger.from_dict(ledger.to_dict()) == ledger
