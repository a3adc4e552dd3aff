"""The training kit in museforge.export: schedule, loop, checkpoints and resume, GAN helpers, inputs."""

from __future__ import annotations

import math
import os
import re
import signal
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import museforge
from museforge.export.callbacks import Checkpoints, Hooks
from museforge.export.fit import StoppedWithCheckpoint, fit
from museforge.export.gan import EMA, EpochBatches
from museforge.export.pipeline import RecipeContext, TrainedModel, run_recipe
from museforge.export.schedule import Schedule
from museforge.export.seeds import Streams, seeded
from museforge.export.spec import ExportSpec, TensorSpec, pixels, uniform

STEPS = 10


class Crash(RuntimeError):
    pass


def train(checkpoints: Path | None, crash_at: int | None = None,
          ran: list[int] | None = None, interrupt_at: int | None = None) -> dict[str, Tensor]:
    """A small regression whose every step draws from numpy, a torch generator and torch's global RNG
    (dropout); ``ran`` collects the steps run."""
    streams = seeded(3)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        if step == crash_at:
            raise Crash(step)
        if step == interrupt_at:  # Ctrl-C as the step begins: it is finished, saved, then stopped
            os.kill(os.getpid(), signal.SIGINT)
        if ran is not None:
            ran.append(step)
        x = torch.from_numpy(streams.numpy.standard_normal((16, 4)).astype(np.float32))
        noise = torch.randn(16, 1, generator=streams.torch)
        value = ((model(x) - x.sum(1, keepdim=True) - 0.1 * noise) ** 2).mean()
        return value, {"loss": float(value.detach())}

    fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), loss, steps=STEPS, streams=streams,
        hooks=Hooks(checkpoints=Checkpoints(checkpoints) if checkpoints else None), checkpoint_every=3)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    uninterrupted = train(None)
    with pytest.raises(Crash):
        train(tmp_path, crash_at=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003.pt", "step-00000006.pt"]
    ran: list[int] = []
    resumed = train(tmp_path, ran=ran)
    assert ran == [7, 8, 9, 10]
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)


def test_ctrl_c_saves_the_step_under_way_and_the_run_resumes_after_it(tmp_path: Path) -> None:
    """Ctrl-C once ended a run at once: nothing since the last checkpoint (every 500 steps in most
    recipes) was kept, so the same command started again from step 0."""
    from museforge.export.fit import StoppedWithCheckpoint

    uninterrupted = train(None)
    with pytest.raises(StoppedWithCheckpoint, match=r"stopped after step 5 of 10; saved .*step-00000005\.pt"):
        train(tmp_path, interrupt_at=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003.pt", "step-00000005.pt"]
    ran: list[int] = []
    resumed = train(tmp_path, ran=ran)
    assert ran == [6, 7, 8, 9, 10]
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_another_runs_checkpoints_are_not_resumed(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        train(tmp_path, crash_at=8)
    state = torch.load(tmp_path / "step-00000006.pt", weights_only=True)
    state["run"]["seed"] = 4
    torch.save(state, tmp_path / "step-00000006.pt")
    ran: list[int] = []
    with pytest.warns(UserWarning, match="another run"):
        train(tmp_path, ran=ran)
    assert ran == list(range(1, STEPS + 1))


def build_stopped_once(ctx: RecipeContext) -> TrainedModel:
    """A recipe fitting a small regression; Ctrl-C arrives at step 5 unless it resumes from a checkpoint."""
    first = ctx.checkpoints.latest() is None
    streams = seeded(ctx.seed)
    model = nn.Linear(4, 1)

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        if first and step == 5:
            os.kill(os.getpid(), signal.SIGINT)
        x = torch.from_numpy(streams.numpy.standard_normal((16, 4)).astype(np.float32))
        value = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        return value, {"loss": float(value.detach())}

    fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), loss, steps=STEPS, streams=streams,
        hooks=ctx.hooks, checkpoint_every=100)
    spec = ExportSpec(inputs=(TensorSpec("x", "float32", ("batch", 4)),),
                      outputs=(TensorSpec("y", "float32", ("batch", 1)),))
    return TrainedModel(module=model, spec=spec, dataset={"source": "seeded rows"})


def bar_lines(stderr: str) -> list[str]:
    """The progress bar's lines (stderr is no terminal here: one as it opens, one as it closes)."""
    return [line for line in re.split(r"[\r\n]+", stderr) if "step/s" in line or "?step" in line]


def test_a_resumed_export_counts_its_progress_from_the_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A resumed run's bar started again at 0 (0/10, then 10/10 as if every step ran in it), so its
    percentage, rate and time left were wrong throughout; its summary did not say it resumed."""
    recipe = museforge.Recipe(name="studio.resumable", description="stopped once",
                              build=f"{__name__}:build_stopped_once", models_dir=tmp_path / "models")
    with pytest.raises(StoppedWithCheckpoint, match="stopped after step 5 of 10"):
        run_recipe(recipe, checkpoint_dir=tmp_path / "checkpoints")
    stopped = bar_lines(capsys.readouterr().err)
    assert "| 0/10 [" in stopped[0] and "| 5/10 [" in stopped[-1]

    result = run_recipe(recipe, checkpoint_dir=tmp_path / "checkpoints")
    said = capsys.readouterr().err
    assert "resuming from the checkpoint after step 5 of 10" in said
    resumed = bar_lines(said)
    # Opened at the checkpoint's step: tqdm counts only the steps after it in the rate and time left.
    assert re.search(r"^train studio.resumable, resumed after step 5:  50%\|.*\| 5/10 \[", resumed[0])
    assert re.search(r"100%\|.*\| 10/10 \[", resumed[-1])
    assert result.manifest.training["resumed"] == {"after_step": 5, "of": 10}


def test_schedule_warms_up_then_decays_to_its_floor() -> None:
    factor = Schedule(warmup_divisor=10, floor=0.05).factor(100)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 9 / 100)))
    assert factor(100) == pytest.approx(0.05)
    assert all(factor(s) >= factor(s + 1) for s in range(10, 100))
    with pytest.raises(ValueError, match="steps"):
        Schedule().factor(0)


def test_epoch_batches_cover_each_epoch_once_in_a_new_order() -> None:
    batches = EpochBatches(10, 3, torch.Generator().manual_seed(0))
    first = torch.cat([batches.batch(step) for step in (1, 2, 3)])
    second = torch.cat([batches.batch(step) for step in (4, 5, 6)])
    assert len(set(first.tolist())) == 9 and len(set(second.tolist())) == 9
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="batch_size"):
        EpochBatches(2, 3, torch.Generator())


def test_ema_starts_close_to_the_model_then_lags_it() -> None:
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.999, warmup=9.0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 1)
    assert float(ema.model.weight) == pytest.approx(0.9)  # decay 1 / 10 after one update
    assert not ema.model.weight.requires_grad


def test_example_inputs_follow_the_spec() -> None:
    spec = ExportSpec(
        inputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width"), example=pixels),
                TensorSpec("level", "float32", ("batch",), range=(0.0, 60.0), example=uniform(5.0, 50.0)),
                TensorSpec("kind", "int64", ("batch",), range=(0, 2)),
                TensorSpec("z", "float32", ("batch", "cells"))),
        outputs=(TensorSpec("out", "float32", ("batch", 3, "height", "width")),),
        example_axes={"height": 6, "width": 10, "cells": (2, 5)},
    )
    feed = spec.example_inputs(np.random.default_rng(0), 4)
    assert list(feed) == spec.input_names
    assert feed["image"].shape == (4, 3, 6, 10) and feed["image"].dtype == np.float32
    assert feed["image"].min() >= 0.0 and feed["image"].max() < 1.0
    assert feed["level"].dtype == np.float32 and feed["level"].min() >= 5.0 and feed["level"].max() < 50.0
    assert feed["kind"].dtype == np.int64 and set(feed["kind"].tolist()) <= {0, 1, 2}
    assert feed["z"].shape[0] == 4 and 2 <= feed["z"].shape[1] < 5


def test_streams_restore_every_generator() -> None:
    streams = Streams(np.random.default_rng(1), torch.Generator().manual_seed(1))
    saved = streams.state()
    drawn = (streams.numpy.random(), float(torch.rand(1, generator=streams.torch)), float(torch.rand(1)))
    streams.restore(saved)
    again = (streams.numpy.random(), float(torch.rand(1, generator=streams.torch)), float(torch.rand(1)))
    assert drawn == again
