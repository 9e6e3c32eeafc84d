"""Training on tiny real data: learning, exact resume, DDP, bad files, export into the codec."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicodec import compress, decompress
from nicodec.eval.baselines import nicodec_codec
from nicodec.eval.runner import PointCache, evaluate
from nicodec.models.pretrained import load_model
from nicodec.models.registry import MODELS
from nicodec.train.config import TrainConfig, parse_duration
from nicodec.train.export import codec_figures, export, load_checkpoint_model, validation_loss, write_card
from nicodec.train.loop import Trainer, rd_loss
from tests.conftest import TRAIN, kodak_crop
from tests.train.conftest import TINY_MODEL


def _losses(run: Path) -> list[float]:
    with (run / "train.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_loss_decreases(tiny_config):
    cfg = tiny_config(steps=60)
    Trainer(cfg).run()
    losses = _losses(Path(cfg.out))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_reproduces_uninterrupted_run(tiny_config, tmp_path, ema):
    straight = tiny_config(steps=6, out=str(tmp_path / "a"), ema=ema)
    Trainer(straight).run()
    first = tiny_config(steps=3, out=str(tmp_path / "b"), ema=ema)
    Trainer(first).run()
    resumed = Trainer(tiny_config(steps=6, out=str(tmp_path / "b"), ema=ema), resume=True)
    assert resumed.step == 3
    resumed.run()
    a, b = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in "ab")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["ema"].keys() == b["ema"].keys() and bool(a["ema"]) == bool(ema)
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])


def test_resume_forgets_the_logs_of_the_lost_interval(tiny_config):
    cfg = tiny_config(steps=4)
    Trainer(cfg).run()
    log = Path(cfg.out) / "train.csv"
    with log.open("a") as f:  # what a run killed after its last checkpoint leaves behind
        f.write("6,-1,-1,-1,-1,-1,-1\n")
    Trainer(tiny_config(steps=6), resume=True).run()
    with log.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6] and float(rows[-1]["loss"]) > 0


def test_moving_average_is_validated_and_exported(tiny_config):
    cfg = tiny_config(steps=6, ema=0.5, validate_steps=4)
    trainer = Trainer(cfg)
    start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.run()
    name = "g_a.0.weight"
    live, ema = trainer.model.state_dict()[name], trainer.ema[name]
    assert not torch.equal(ema, live) and not torch.equal(ema, start[name])
    assert (ema - start[name]).abs().max() < (live - start[name]).abs().max()  # it lags behind
    for name_csv in ("val.csv", "val_ema.csv"):  # every 4 steps, and the weights the run ends on
        with (Path(cfg.out) / name_csv).open() as f:
            rows = [(int(r["step"]), float(r["t"])) for r in csv.DictReader(f)]
        assert rows == [(step, t) for step in (4, 6) for t in (0.0, 3.5, 7.0)]
    checkpoint = Path(cfg.out) / "checkpoint.pt"
    exported, info = load_checkpoint_model(checkpoint, "average")
    assert torch.equal(exported.state_dict()[name], ema) and info["weights"] == "moving average"
    raw, info = load_checkpoint_model(checkpoint, "raw")
    assert torch.equal(raw.state_dict()[name], live) and info["weights"] == "raw"


@pytest.mark.parametrize("balance", [0.0, 0.5])
def test_export_picks_the_weights_that_validated_better(tiny_config, balance):
    cfg = tiny_config(steps=6, ema=0.5, validate_steps=4, level_balance=balance)
    Trainer(cfg).run()
    run, checkpoint = Path(cfg.out), Path(cfg.out) / "checkpoint.pt"
    model, _ = load_checkpoint_model(checkpoint, "raw")
    losses = {n: validation_loss(run / n, 6, model, balance) for n in ("val.csv", "val_ema.csv")}
    assert all(v > 0 for v in losses.values())
    better = "raw" if losses["val.csv"] < losses["val_ema.csv"] else "moving average"
    assert load_checkpoint_model(checkpoint)[1]["weights"] == better

    def rewrite(name: str, bpp: str | None) -> None:  # at step 6: set every bpp, or drop the rows
        with (run / name).open() as f:
            rows = list(csv.DictReader(f))
        rows = [r if r["step"] != "6" else {**r, "bpp": bpp} for r in rows if bpp or r["step"] != "6"]
        with (run / name).open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    rewrite("val_ema.csv", "100")
    assert load_checkpoint_model(checkpoint)[1]["weights"] == "raw"
    rewrite("val.csv", None)  # the final weights were not validated: the average
    assert load_checkpoint_model(checkpoint)[1]["weights"] == "moving average"
    Trainer(tiny_config(steps=2, out=str(run.parent / "plain"))).run()
    with pytest.raises(ValueError, match="no moving average"):
        load_checkpoint_model(run.parent / "plain" / "checkpoint.pt", "average")


def test_resume_with_a_new_learning_rate(tiny_config):
    Trainer(tiny_config(steps=2)).run()
    resumed = Trainer(tiny_config(steps=4, lr=1e-5, warmup_steps=4), resume=True)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5 / 4)  # warm-up restarts
    resumed.run()
    assert resumed.step == 4
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5 * 3 / 4)


def test_resume_onto_a_wider_rate_ladder(tiny_config, tmp_path, capsys):
    Trainer(tiny_config(steps=2, ema=0.5)).run()
    checkpoint = Path(tiny_config().out) / "checkpoint.pt"
    old = torch.load(checkpoint, weights_only=True)
    weights = export(checkpoint, tmp_path / "old.safetensors", ship=False, weights="raw")
    step = (0.25 / 0.0018) ** (1 / 7)  # one rung of the default 8-level ladder
    wider = {"lambda_min": 0.0018 / step**2, "model_config": {**TINY_MODEL, "levels": 10}}
    resumed = Trainer(tiny_config(steps=3, ema=0.5, **wider), resume=True)
    assert "gain tables re-sampled" in capsys.readouterr().err
    gains = resumed.model.log_gain.detach()
    assert gains.shape[0] == 10
    assert torch.allclose(gains[2:], old["model"]["log_gain"], atol=1e-6)  # trained rungs kept
    assert torch.allclose(gains[0] - gains[1], gains[1] - gains[2], atol=1e-5)  # extrapolated
    assert torch.allclose(resumed.ema["log_inv_gain"][2:], old["ema"]["log_inv_gain"], atol=1e-6)
    lam = resumed.model.lam(torch.tensor([2.0, 9.0]))
    assert torch.allclose(lam, torch.tensor([0.0018, 0.25]), rtol=1e-4)
    resumed.run()
    assert resumed.step == 3
    # shipped weights on the old ladder can seed a run on the new one
    seeded = Trainer(tiny_config(steps=4, out=str(tmp_path / "seeded"), **wider))
    assert seeded.model.log_gain.shape[0] == 10 and seeded.step == 0
    seeded = Trainer(tiny_config(steps=4, out=str(tmp_path / "seeded"), init=str(weights), **wider))
    assert torch.allclose(seeded.model.log_gain.detach()[2:], old["model"]["log_gain"], atol=1e-6)


def test_broken_image_is_skipped_with_message(tiny_config, capsys):
    Trainer(tiny_config(steps=1)).run()
    assert "skipping unreadable image" in capsys.readouterr().err


def test_sigterm_checkpoints_and_stops(tiny_config):
    cfg = tiny_config(steps=10_000)
    trainer = Trainer(cfg)
    trainer.stop_requested = True  # what the SIGTERM/SIGINT handler sets
    trainer.run()
    assert (Path(cfg.out) / "checkpoint.pt").exists() and trainer.step == 0


def test_a_time_budget_with_a_progress_bar_trains_and_stops(tiny_config, capsys):
    """A budgeted run has no step total; its bar (tqdm without a total) must still drive the loop."""
    cfg = tiny_config(time_budget="3s", progress=True)
    trainer = Trainer(cfg)
    trainer.run()
    assert trainer.step > 0 and (Path(cfg.out) / "checkpoint.pt").exists()
    assert "step" in capsys.readouterr().err


def test_config_validation_and_durations():
    assert parse_duration("2h30m") == 9000 and parse_duration("45s") == 45
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig.load(None, optimizer="rmsprop")
    with pytest.raises(ValueError, match="duration"):
        TrainConfig.load(None, time_budget="soon")


def test_level_balance_gives_every_level_a_like_weight():
    """The shipped model's loss grows ~40x from the lowest level to the highest; balanced, the
    levels weigh within a factor of 3 of each other, and the ladder's middle keeps its weight."""
    net = load_model().net
    with Image.open(sorted(TRAIN.glob("*.png"))[0]) as im:
        x = torch.from_numpy(np.asarray(im.convert("RGB"))[:128, :128].copy()).permute(2, 0, 1)
    x = x[None].float().repeat(3, 1, 1, 1) / 255
    t = torch.tensor([0.0, (net.levels - 1) / 2, net.levels - 1.0])

    def per_level(balance: float) -> torch.Tensor:
        cfg = TrainConfig.load(None, level_balance=balance)
        with torch.no_grad():
            out = net(x, t, noise=False)
        return torch.stack([rd_loss(cfg, net, {k: v[i : i + 1] for k, v in out.items()}, x[i : i + 1],
                                    t[i : i + 1])[0] for i in range(3)])

    plain, balanced = per_level(0.0), per_level(0.5)
    assert plain[2] / plain[0] > 10
    assert 1 / 3 < balanced[2] / balanced[0] < 3
    assert balanced[1] == pytest.approx(plain[1])
    with pytest.raises(ValueError, match="level_balance"):
        TrainConfig.load(None, level_balance=2.0)


def test_a_config_extends_another(tmp_path):
    configs = Path(__file__).resolve().parents[2] / "configs"
    base = TrainConfig.load(configs / "hyperprior.toml")
    variant = TrainConfig.load(configs / "checkerboard.toml")
    assert (variant.model, variant.out) == ("checkerboard", "runs/checkerboard")
    # only what it states differs
    assert variant.model_config == {**base.model_config, "M": 320, "level_affine": True, "res_blocks": 2}
    assert (variant.cache_crop, variant.crops_per_image) == (288, 6)
    assert variant.level_balance == 0.5
    stated = ("model", "out", "model_config", "cache", "cache_crop", "crops_per_image", "level_balance")
    assert {**variant.to_dict(), **{k: getattr(base, k) for k in stated}} == base.to_dict()
    (tmp_path / "loop.toml").write_text('extends = "loop.toml"\n')
    with pytest.raises(ValueError, match="extends itself"):
        TrainConfig.load(tmp_path / "loop.toml")


def test_export_roundtrips_into_codec(tiny_config, tmp_path, crop):
    cfg = tiny_config(steps=4, optimizer="sgd")
    Trainer(cfg).run()
    out = export(Path(cfg.out) / "checkpoint.pt", tmp_path / "tiny.safetensors", ship=False)
    model = load_model(str(out))
    data = compress(crop, quality=40, model=model)
    assert decompress(data, model=model).size == crop.size
    fine = Trainer(tiny_config(steps=6, init=str(out), out=str(tmp_path / "fine"), warmup_steps=4))
    assert fine.step == 4  # counters continue from the exported record
    fine.run()
    assert fine.step == 6
    # the warm-up counts from the start of this segment, not from step 0 of the record
    assert fine.optimizer.param_groups[0]["lr"] == pytest.approx(fine.cfg.lr * 3 / 4)


def test_model_card_figures_use_the_real_codec(tmp_path):
    kodak_crop(1, (0, 0, 256, 192)).save(tmp_path / "one.png")  # MS-SSIM needs 161+ pixels a side
    cache = PointCache(tmp_path / "cache")
    figures = codec_figures(tmp_path, qualities=(20, 80), cache=cache)
    low, high = figures["20"], figures["80"]
    assert 0 < low["bpp"] < high["bpp"] and 20 < low["psnr"] < high["psnr"]
    assert 0.95 < high["real_over_estimated"] < 1.05 and 0 < low["ms_ssim"] < high["ms_ssim"] < 1
    # `nicodec eval` of the same model then reads those points instead of measuring them again
    codec = replace(nicodec_codec(), values=(20, 50, 80))
    points, hits = evaluate([tmp_path / "one.png"], [codec], cache, progress=False)
    assert hits == 2 and [p["bpp"] for p in points if p["setting"] != 50] == [low["bpp"], high["bpp"]]


def test_checkerboard_warm_starts_from_hyperprior_weights(tiny_config, tmp_path, crop, capsys):
    cfg = tiny_config(steps=3)
    Trainer(cfg).run()
    hyper = export(Path(cfg.out) / "checkpoint.pt", tmp_path / "hyper.safetensors", ship=False)
    warm = Trainer(tiny_config(steps=5, model="checkerboard", init=str(hyper), out=str(tmp_path / "cb")))
    assert "warm start from 'hyperprior' weights: context, entropy_net start fresh" in capsys.readouterr().err
    assert warm.step == 3
    # it begins exactly as the hyperprior it came from: same bits, same reconstruction
    x = torch.from_numpy(np.array(crop.convert("RGB"))[:64, :64]).permute(2, 0, 1)[None].float() / 255
    t = torch.tensor([4.0])
    with torch.no_grad():
        shipped = load_model(str(hyper)).net.to(memory_format=torch.contiguous_format)  # the same kernels
        before, after = shipped(x, t, noise=False), warm.model(x, t, noise=False)
    assert torch.equal(before["bits"], after["bits"]) and torch.equal(before["x_hat"], after["x_hat"])
    warm.run()
    assert warm.step == 5
    factorized = tiny_config(steps=1, model="factorized", out=str(tmp_path / "fp"))
    Trainer(factorized).run()
    flat = export(Path(factorized.out) / "checkpoint.pt", tmp_path / "fp.safetensors", ship=False)
    with pytest.raises(ValueError, match="'factorized' model file does not fit a 'hyperprior' model"):
        Trainer(tiny_config(init=str(flat), out=str(tmp_path / "bad")))


def test_fast_model_takes_the_encoder_of_a_checkerboard_file(tiny_config, tmp_path, capsys):
    """`fast` inherits the encoder side; its decoder starts fresh; a sub-network at learning-rate
    factor 0 stays exactly as it came, one at 0.5 learns at half the rate."""
    cfg = tiny_config(steps=2, model="checkerboard", out=str(tmp_path / "cb"))
    Trainer(cfg).run()
    source = export(Path(cfg.out) / "checkpoint.pt", tmp_path / "cb.safetensors", ship=False)
    frozen = {name: 0.0 for name in ("g_a", "z_prior", "log_gain")}
    fast = Trainer(tiny_config(steps=4, model="fast", init=str(source), out=str(tmp_path / "fast"),
                               network_lr_scale={**frozen, "h_a": 0.5}))
    assert "g_s, h_s, context, entropy_net start fresh" in capsys.readouterr().err
    shipped = load_model(str(source)).net.state_dict()
    before = {k: v.clone() for k, v in fast.model.state_dict().items()}
    assert all(torch.equal(before[k], shipped[k]) for k in before if k.split(".")[0] in ("g_a", "h_a"))
    assert {g["lr_scale"] for g in fast.optimizer.param_groups} == {1.0, 0.5}
    fast.run()
    after = fast.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.split(".")[0] in frozen)
    assert not torch.equal(before["h_a.0.weight"], after["h_a.0.weight"])
    assert not torch.equal(before["g_s.0.weight"], after["g_s.0.weight"])


def test_init_widens_a_smaller_model(tiny_config, tmp_path, crop, capsys):
    cfg = tiny_config(steps=3, model="checkerboard")
    Trainer(cfg).run()
    narrow = export(Path(cfg.out) / "checkpoint.pt", tmp_path / "narrow.safetensors", ship=False)
    wide_config = {**TINY_MODEL, "M": TINY_MODEL["M"] + 8}
    wide = Trainer(tiny_config(steps=6, model="checkerboard", model_config=wide_config,
                               init=str(narrow), out=str(tmp_path / "wide")))
    assert "grown (M=16→24)" in capsys.readouterr().err
    assert wide.step == 3
    x = torch.from_numpy(np.array(crop.convert("RGB"))[:64, :64]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        before = load_model(str(narrow)).net(x, torch.tensor([2.0]), noise=False)
        after = wide.model(x, torch.tensor([2.0]), noise=False)
    assert torch.allclose(before["x_hat"], after["x_hat"], atol=1e-5)
    assert torch.count_nonzero(wide.model.g_a[-1].weight[16:]) == 0
    wide.run()
    assert wide.step == 6 and torch.count_nonzero(wide.model.g_a[-1].weight[16:]) > 0  # they learn
    wider = Trainer(tiny_config(steps=4, model="checkerboard", init=str(narrow),
                                model_config={"N": 24, "M": 16, "N_hyper": 16}, out=str(tmp_path / "wider")))
    assert "grown (N=16→24)" in capsys.readouterr().err and wider.step == 3
    wider.run()  # and the wider model codes real files
    model = load_model(str(export(Path(wider.cfg.out) / "checkpoint.pt", tmp_path / "wider.safetensors",
                                  ship=False)))
    assert decompress(compress(crop, quality=40, model=model), model=model).size == crop.size
    with pytest.raises(ValueError, match="only the widths N and M may grow"):  # hyper-latent too
        Trainer(tiny_config(model="checkerboard", model_config={"N": 24, "M": 24}, init=str(narrow),
                            out=str(tmp_path / "bad")))
    with pytest.raises(ValueError, match="export it and start from the file with --init"):
        Trainer(tiny_config(model="checkerboard", model_config=wide_config), resume=True)


def test_level_affine_tables_grow_from_a_plain_model(tiny_config, tmp_path, crop, capsys):
    cfg = tiny_config(steps=3, model="checkerboard")
    Trainer(cfg).run()
    plain = export(Path(cfg.out) / "checkpoint.pt", tmp_path / "plain.safetensors", ship=False)
    affine = {**TINY_MODEL, "level_affine": True}
    run = tiny_config(steps=6, model="checkerboard", model_config=affine, init=str(plain),
                      out=str(tmp_path / "affine"), lr=1e-4, affine_lr_scale=20.0)
    grown = Trainer(run)
    assert "grown (level_affine)" in capsys.readouterr().err and grown.step == 3
    x = torch.from_numpy(np.array(crop.convert("RGB"))[:64, :64]).permute(2, 0, 1)[None].float() / 255
    t = torch.tensor([2.5])
    with torch.no_grad():  # tables at the identity: the same model
        shipped = load_model(str(plain)).net.to(memory_format=torch.contiguous_format)  # the same kernels
        before, after = shipped(x, t, noise=False), grown.model(x, t, noise=False)
    assert torch.equal(before["x_hat"], after["x_hat"]) and torch.equal(before["bits"], after["bits"])
    assert [g["lr"] for g in grown.optimizer.param_groups] == pytest.approx([1e-4, 2e-3])
    grown.run()
    moved = grown.model.g_s_log_scale.detach().abs().sum(dim=1)
    assert moved.min() >= 0 and moved.max() > 0  # the tables learn, level by level
    resumed = Trainer(tiny_config(**{**run.to_dict(), "steps": 7, "init": ""}), resume=True)
    assert [g["lr"] for g in resumed.optimizer.param_groups] == pytest.approx([1e-4, 2e-3])
    resumed.run()
    model = load_model(str(export(Path(run.out) / "checkpoint.pt", tmp_path / "affine.safetensors",
                                  ship=False)))
    assert model.net.config["level_affine"] is True
    assert decompress(compress(crop, quality=40, model=model), model=model).size == crop.size
    with pytest.raises(ValueError, match="level_affine or res_blocks be added"):  # not taken away
        Trainer(tiny_config(model="checkerboard", init=str(tmp_path / "affine.safetensors"),
                            out=str(tmp_path / "bad")))


def test_residual_blocks_grow_into_a_trained_model(tiny_config, tmp_path, crop, capsys):
    cfg = tiny_config(steps=3, model="checkerboard")
    Trainer(cfg).run()
    plain = export(Path(cfg.out) / "checkpoint.pt", tmp_path / "plain.safetensors", ship=False)
    run = tiny_config(steps=6, model="checkerboard", model_config={**TINY_MODEL, "res_blocks": 1},
                      init=str(plain), out=str(tmp_path / "deep"), lr=1e-4, res_lr_scale=4.0)
    grown = Trainer(run)
    assert "grown (res_blocks=0→1)" in capsys.readouterr().err and grown.step == 3
    assert [g["lr"] for g in grown.optimizer.param_groups] == pytest.approx([1e-4, 4e-4])
    last = grown.model.g_s_res["1"][0].body[-1].weight
    assert torch.count_nonzero(last) == 0
    grown.run()
    assert torch.count_nonzero(last) > 0  # the block has begun to work
    model = load_model(str(export(Path(run.out) / "checkpoint.pt", tmp_path / "deep.safetensors",
                                  ship=False)))
    assert model.net.config["res_blocks"] == 1
    assert torch.equal(model.net.g_s_res["1"][0].body[-1].weight, last.detach())
    assert decompress(compress(crop, quality=40, model=model), model=model).size == crop.size


def test_woken_channels_spare_the_encoder_but_not_the_entropy_model(tiny_config, crop):
    cfg = tiny_config(model="checkerboard", wake_channels=10, wake_discount=0.8, wake_start=4,
                      wake_end=8, steps=8)
    trainer = Trainer(cfg)
    shares = {}
    for step in (3, 4, 6, 8):
        trainer.step = step
        shares[step] = trainer.withheld()
    assert shares == {3: 0.0, 4: 0.8, 6: pytest.approx(0.4), 8: 0.0}
    model = trainer.model
    x = torch.from_numpy(np.array(crop.convert("RGB"))[:64, :64]).permute(2, 0, 1)[None].float() / 255

    def rate_gradients(keep: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad()
        model.rate_grad[10:] = keep
        torch.manual_seed(0)  # the same noise in both passes
        bits = model(x, torch.tensor([3.0]))["bits"]
        bits.sum().backward()
        return bits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    bits, full = rate_gradients(1.0)
    bits_woken, woken = rate_gradients(0.0)
    assert torch.equal(bits, bits_woken)  # the rate itself, logged and validated, is the full one
    entropy = [n for n in full if n.startswith(("h_s.", "context.", "entropy_net."))]
    assert entropy and all(torch.allclose(full[n], woken[n]) for n in entropy)
    last = next(n for n, p in model.named_parameters() if p is model.g_a[-1].weight)
    assert torch.allclose(full[last][:10], woken[last][:10])
    assert not torch.allclose(full[last][10:], woken[last][10:])
    model.rate_grad.fill_(1.0)
    trainer.step = 0
    trainer.run()  # steps 4-7 train with part of the woken channels' rate gradient withheld
    assert trainer.step == 8 and np.isfinite(_losses(Path(cfg.out))).all()
    assert torch.allclose(model.rate_grad[10:], torch.tensor(1 - 0.8 / 4))  # set for step 7
    with pytest.raises(ValueError, match="wake_end > wake_start"):
        tiny_config(wake_channels=10, wake_start=4, wake_end=4)
    with pytest.raises(ValueError, match="more latent channels"):
        Trainer(tiny_config(model="checkerboard", wake_channels=16, wake_start=0, wake_end=4))


def test_model_card_marks_the_latest_export_as_default(tmp_path):
    card = tmp_path / "card.md"
    entry = {"file": "x.safetensors", "sha256": "0" * 64, "exported": "now", "steps": 1,
             "wall_hours": 0.1, "cpu_hours": 0.2, "weights": "raw", "recipe": {}, "kodak": {},
             "data": {"folder": "d", "train_files": 2, "validation_files": 1, "names_sizes_sha256": "ab"}}
    write_card(card, {**entry, "model": "hyperprior"})
    card.write_text(card.read_text() + "\nkept by hand\n")
    write_card(card, {**entry, "model": "checkerboard"})
    write_card(card, {**entry, "model": "checkerboard", "steps": 2})
    text = card.read_text()
    assert "## `hyperprior`\n" in text and "## `checkerboard` (default)\n" in text
    assert text.count("(default)") == 1 and text.count("<!-- model:checkerboard -->") == 1
    assert "kept by hand" in text and "after **2 steps**" in text


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_zoo_model_trains_and_codes(name, tiny_config, tmp_path, crop):
    cfg = tiny_config(steps=2, model=name)
    Trainer(cfg).run()
    out = export(Path(cfg.out) / "checkpoint.pt", tmp_path / f"{name}.safetensors", ship=False)
    model = load_model(str(out))
    assert model.name == name
    data = compress(crop, quality=70, model=model)
    assert decompress(data, model=model).size == crop.size


@pytest.mark.skipif(sys.platform != "linux", reason="gloo test on linux")
def test_ddp_two_processes(tiny_config, tmp_path):
    cfg = tiny_config(steps=3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "--master_addr=127.0.0.1",
           "-m", "nicodec", "train", "--data", cfg.data, "--out", cfg.out, "--cache", cfg.cache,
           "--model-config", '{"N": 16, "M": 16}', "--crop", "64", "--cache-crop", "64", "--batch", "2",
           "--precision", "fp32", "--no-compile", "--threads", "1", "--steps", "3", "--no-progress",
           "--validate-steps", "0", "--log-steps", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[:3000] + "\n...\n" + res.stderr[-1500:]
    assert (Path(cfg.out) / "checkpoint.pt").exists()
    assert len(_losses(Path(cfg.out))) == 3


@pytest.mark.parametrize(("capability", "precision"), [("AVX2", "fp32"), ("AVX512", "bf16")])
def test_bf16_falls_back_to_fp32_where_it_is_slow(tiny_config, monkeypatch, capsys, capability, precision):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    trainer = Trainer(tiny_config(precision="bf16"))
    assert trainer.cfg.precision == precision
    assert ("training in fp32" in capsys.readouterr().err) == (precision == "fp32")
