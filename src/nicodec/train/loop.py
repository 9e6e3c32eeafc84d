"""The rate-distortion training loop: checkpoints, resume, time budget, logs, DDP.

Launch through `nicodec train` (one process) or `torchrun --nproc_per_node=N -m nicodec train`
(DistributedDataParallel; gloo on CPU, nccl on GPU). Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from pytorch_msssim import ms_ssim
from safetensors.torch import load_file
from torch import nn

from nicodec import progress
from nicodec.models.base import (
    AFFINE_TABLES,
    LAMBDA_MAX,
    LAMBDA_MIN,
    LEVEL_TABLES,
    LEVELS,
    RES_BLOCKS,
    Ladder,
    noisy,
    regrid,
)
from nicodec.models.precision import bf16_pays
from nicodec.models.pretrained import file_metadata, fresh_networks, state_dict_from, training_record
from nicodec.models.registry import build_model
from nicodec.models.widen import ADDABLE, ONLY_WIDTHS, WIDTHS, architecture, can_widen, widen_state
from nicodec.train.config import TrainConfig
from nicodec.train.data import CropCache, sample_batch
from nicodec.train.latents import LatentCache

MSSSIM_WEIGHT = 1000.0  # maps the MSE lambda ladder onto (1 - MS-SSIM) distortions
CHECKPOINT = "checkpoint.pt"


def level_weight(model: nn.Module, t: torch.Tensor, balance: float) -> torch.Tensor:
    """Weight of level t's loss: (lambda / lambda_mid)^-balance, lambda_mid the ladder's middle.

    A sample's loss J grows with its lambda (J ~ lambda^0.52 for the shipped model: 40x from the
    lowest level to the highest), so an unweighted mean lets the top levels drive every shared
    weight, while BD-rate values a relative gain alike at every rate; balance 0.5 evens it out.
    """
    return (model.lam(t) / math.sqrt(model.lambda_min * model.lambda_max)) ** -balance


def rd_loss(cfg: TrainConfig, model: nn.Module, out: dict, x: torch.Tensor,
            t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bpp, mse) averaged over the batch: bpp + lambda(t) * distortion, each sample
    weighted by `level_weight` (1 unless the config sets `level_balance`)."""
    pixels = x.shape[2] * x.shape[3]
    bpp = out["bits"] / pixels
    mse = ((out["x_hat"] - x) ** 2).mean(dim=(1, 2, 3))
    lam = model.lam(t)
    if cfg.loss == "mse":
        distortion = 255.0**2 * mse
    else:
        distortion = MSSSIM_WEIGHT * (1 - ms_ssim(out["x_hat"].clamp(0, 1), x, data_range=1.0,
                                                  size_average=False))
    weight = level_weight(model, t, cfg.level_balance)
    return (weight * (bpp + lam * distortion)).mean(), bpp.mean(), mse.mean()


def _model_config(cfg: dict) -> dict:
    """The model's constructor arguments from a run configuration (as a dict)."""
    return {"lambda_min": cfg["lambda_min"], "lambda_max": cfg["lambda_max"], **cfg["model_config"]}


def _ladder_of(model_config: dict) -> Ladder:
    """The lambda ladder a model was built with, from its constructor arguments."""
    return (model_config.get("levels", LEVELS), model_config.get("lambda_min", LAMBDA_MIN),
            model_config.get("lambda_max", LAMBDA_MAX))


def _regrid_gains(state: dict[str, torch.Tensor], old: Ladder, new: Ladder) -> None:
    for name in LEVEL_TABLES:
        if name in state:
            state[name] = regrid(state[name], old, new)


def _network_of(key: str) -> str:
    """The top-level sub-network a model file's tensor belongs to (integer twins included)."""
    return key.split(".")[1] if key.startswith("codec.") else key.split(".")[0]


def psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


@contextmanager
def swapped_in(model: nn.Module, weights: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily give `model` these parameter values (e.g. the moving average)."""
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in weights}
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
        try:
            yield
        finally:
            for n, w in saved.items():
                params[n].copy_(w)


class Trainer:
    """Owns model, optimizer, schedule and RNG state, so a checkpoint can resume exactly."""

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.rank, self.world = self._init_distributed()
        if cfg.latent_samples and self.world > 1:  # a step past the wrapper would not sync gradients
            raise ValueError("latent_samples trains in one process (not with torchrun)")
        if cfg.analysis_frozen_layers and self.world > 1:  # DDP expects a gradient for every parameter
            raise ValueError("analysis_frozen_layers trains in one process (not with torchrun)")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device if cfg.device == "cpu" else f"cuda:{self._local_rank()}")
        if cfg.precision == "bf16" and not bf16_pays(self.device):
            if self.rank == 0:
                print(f"bf16 is far slower than fp32 on this CPU ({torch.backends.cpu.get_cpu_capability()}, "
                      "no AVX-512): training in fp32", file=sys.stderr)
            cfg.precision = "fp32"
        torch.manual_seed(cfg.seed + self.rank)
        self.rng = np.random.default_rng(cfg.seed + self.rank)
        self.model = build_model(cfg.model, **_model_config(cfg.to_dict())).to(self.device)
        if cfg.analysis_frozen_layers >= len(self.model.g_a):
            raise ValueError(f"analysis_frozen_layers must be below g_a's {len(self.model.g_a)} layers")
        if cfg.wake_channels and not (self.model.entropy == "hyperprior"
                                      and cfg.wake_channels < self.model.config["M"]):
            raise ValueError("wake_channels needs a hyperprior model with more latent channels")
        for name, scale in cfg.network_lr_scale.items():
            if scale == 0:
                getattr(self.model, name).requires_grad_(False)
        self.optimizer = self._optimizer()
        self.segment_start = 0  # step at which this process started training (see _lr_factor)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.wall = 0.0  # seconds of training over all resumed segments
        self.cpu = 0.0  # this process's CPU seconds (all its threads) over all segments
        if cfg.init:
            self._init_from(Path(cfg.init))
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        self.ema: dict[str, torch.Tensor] = {}
        if resume:
            self.load_checkpoint(self.out / CHECKPOINT)
        # The moving average of the weights smooths out the step-to-step noise of a high learning
        # rate; it starts from the current weights (also when a checkpoint predates it).
        if not cfg.ema:
            self.ema = {}
        elif not self.ema:
            self.ema = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        live = dict(self.model.named_parameters())
        self._ema_pairs = (list(self.ema.values()), [live[n] for n in self.ema])  # for the step
        self.segment_start = self.step
        for group in self.optimizer.param_groups:  # the first step of a segment obeys its warm-up
            group["lr"] = self.cfg.lr * group.get("lr_scale", 1.0) * self._lr_factor(self.step)
        net: nn.Module = self.model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(net)
        self.net = torch.compile(net) if cfg.compile else net
        code = self.model.code_latent  # a step on cached latents (`train.latents`)
        self.code_latent = torch.compile(code) if cfg.compile else code
        self.stop_requested = False

    # -- setup ------------------------------------------------------------------------------
    @staticmethod
    def _local_rank() -> int:
        return int(os.environ.get("LOCAL_RANK", 0))

    def _init_distributed(self) -> tuple[int, int]:
        world = int(os.environ.get("WORLD_SIZE", 1))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.cfg.device == "cuda" else "gloo")
        return (dist.get_rank(), world) if world > 1 else (0, 1)

    def _param_groups(self) -> list[dict]:
        """The level-affine tables learn `affine_lr_scale` times faster: each row is reached by
        only the samples near its level, and they are few (2 x 11 x 384 per transform). Residual
        blocks learn `res_lr_scale` times faster: added to a trained model, they start from
        nothing while the rest is being fine-tuned. A sub-network named in `network_lr_scale`
        learns at that factor instead (0: not at all), e.g. a warm-started encoder beside a fresh
        decoder."""
        named = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        scaled = {name: [p for n, p in named.items() if n.split(".")[0] == name]
                  for name, scale in self.cfg.network_lr_scale.items() if scale}
        taken = {id(p) for params in scaled.values() for p in params}
        tables = [named[n] for n in AFFINE_TABLES if n in named and id(named[n]) not in taken]
        blocks = [p for n, p in named.items() if n.split(".")[0] in RES_BLOCKS and id(p) not in taken]
        taken |= {id(p) for p in tables + blocks}
        groups = [{"params": [p for p in named.values() if id(p) not in taken], "lr_scale": 1.0}]
        groups += [{"params": params, "lr_scale": self.cfg.network_lr_scale[name]}
                   for name, params in scaled.items() if params]
        if tables:
            groups.append({"params": tables, "lr_scale": self.cfg.affine_lr_scale})
        if blocks:
            groups.append({"params": blocks, "lr_scale": self.cfg.res_lr_scale})
        return groups

    def _optimizer(self) -> torch.optim.Optimizer:
        params, cfg = self._param_groups(), self.cfg
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
        cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _lr_factor(self, step: int) -> float:
        """Warm-up restarts with every segment (fresh or resumed), so a resumed run can safely
        move to a higher learning rate; the cosine decay follows the absolute step."""
        since = step - self.segment_start
        warm = min(1.0, (since + 1) / self.cfg.warmup_steps) if self.cfg.warmup_steps else 1.0
        if self.cfg.lr_schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * min(step, self.cfg.steps) / self.cfg.steps))
        return warm

    def _init_from(self, path: Path) -> None:
        """Start from a model file (e.g. the shipped weights); counters continue from its record.

        A file of another zoo model warm-starts the sub-networks both share (a `checkerboard`
        from `hyperprior` weights); the rest keep their fresh initialisation. A file of a
        narrower model (N, M) is widened without changing what it computes (`models/widen.py`).
        """
        meta, tensors = file_metadata(path), load_file(path)
        if self.model.inherits is not None and meta.get("model") != self.model.name:
            tensors = {k: v for k, v in tensors.items() if _network_of(k) in self.model.inherits}
        config = json.loads(meta["config"])
        if not can_widen(config, self.model.config):
            raise ValueError(f"--init {path}: its architecture {config} does not fit this run's "
                             f"{self.model.config} ({ONLY_WIDTHS})")
        grows = architecture(config) != architecture(self.model.config)
        source = build_model(meta.get("model", ""), **config) if grows else self.model
        state = state_dict_from(source, tensors)
        if set(state) - set(source.state_dict()):
            raise ValueError(f"--init {path}: a '{meta.get('model')}' model file does not fit a "
                             f"'{self.model.name}' model")
        old = _ladder_of(config)
        if old != self.model.ladder:
            self._report_regrid(old)
            _regrid_gains(state, old, self.model.ladder)
        if grows:
            if self.rank == 0:
                grown = [f"{k}={config[k]}→{self.model.config[k]}" for k in WIDTHS
                         if config[k] != self.model.config[k]]
                for k in ADDABLE:
                    was, now = config.get(k, 0), self.model.config.get(k, 0)
                    if was != now:
                        grown.append(k if now is True else f"{k}={was}→{now}")
                print(f"grown ({', '.join(grown)}): what is new starts inert", file=sys.stderr)
            state = widen_state(state, config, self.model)
        fresh = fresh_networks(self.model, tensors)
        if fresh and self.rank == 0:
            print(f"warm start from '{meta.get('model')}' weights: {', '.join(fresh)} start fresh",
                  file=sys.stderr)
        self.model.load_state_dict(state)
        record = training_record(path)
        self.step = int(record.get("step", 0))
        self.wall, self.cpu = float(record.get("wall_s", 0)), float(record.get("cpu_s", 0))
        self.scheduler.last_epoch = self.step  # as a resumed scheduler would be (warm-up)

    def _report_regrid(self, old: Ladder) -> None:
        new = self.model.ladder
        if self.rank == 0:
            print(f"rate ladder {old[0]} levels, lambda {old[1]:g}..{old[2]:g} -> {new[0]} levels, "
                  f"lambda {new[1]:g}..{new[2]:g}: gain tables re-sampled", file=sys.stderr)

    def _regrid_checkpoint(self, ck: dict, old: Ladder) -> None:
        """Move the checkpoint's gain tables (weights, moving average, optimizer moments) onto
        this run's lambda ladder, e.g. to extend a trained model to lower rates."""
        self._report_regrid(old)
        new = self.model.ladder
        _regrid_gains(ck["model"], old, new)
        _regrid_gains(ck.get("ema") or {}, old, new)
        position = {id(p): i for i, p in enumerate(p for g in self.optimizer.param_groups
                                                   for p in g["params"])}
        index = {n: position[id(p)] for n, p in self.model.named_parameters()}
        for name in LEVEL_TABLES:
            if name not in index:
                continue
            moments = ck["optimizer"]["state"].get(index[name], {})
            for key, value in moments.items():
                if value.dim() == 2:  # exp_avg, exp_avg_sq, momentum_buffer
                    value = regrid(value, old, new)
                    moments[key] = value.clamp_min(0) if key == "exp_avg_sq" else value

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step, "wall": self.wall,
                "cpu": self.cpu, "torch_rng": torch.get_rng_state(),
                "numpy_rng": json.dumps(self.rng.bit_generator.state),
                "config": json.dumps(self.cfg.to_dict()), "ema": self.ema}

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        tmp = self.out / (CHECKPOINT + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, self.out / CHECKPOINT)

    def load_checkpoint(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint to resume from at {path}")
        ck = torch.load(path, map_location=self.device, weights_only=True)
        saved = _model_config(json.loads(ck["config"]))
        if architecture(saved) != architecture(self.model.config):
            raise ValueError(f"{path} holds a model of {saved}, not {self.model.config}: resume with "
                             "its settings, or export it and start from the file with --init")
        old = _ladder_of(saved)
        if old != self.model.ladder:
            self._regrid_checkpoint(ck, old)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.step, self.wall, self.cpu = ck["step"], ck["wall"], ck["cpu"]
        self.ema = ck.get("ema") or {}
        # A resumed run follows the learning rate it is given now (e.g. a lower final stage).
        self.scheduler.base_lrs = [self.cfg.lr * g.get("lr_scale", 1.0) for g in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            group["initial_lr"] = self.cfg.lr * group.get("lr_scale", 1.0)
        if self.rank == 0:
            torch.set_rng_state(ck["torch_rng"])
            self.rng.bit_generator.state = json.loads(ck["numpy_rng"])

    # -- loop -------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.cfg.precision == "bf16")

    def train_step(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
                   ) -> tuple[float, float, float]:
        """One step on pixels x at levels t (with y, their cached latents: `train.latents`)."""
        self.model.train()
        if self.cfg.wake_channels:
            self.model.rate_grad[self.cfg.wake_channels:] = 1.0 - self.withheld()
        with self._autocast():
            out = (self.net(x, t, frozen=self.cfg.analysis_frozen_layers) if y is None
                   else self.code_latent(y, t, noisy))
        loss, bpp, mse = rd_loss(self.cfg, self.model, out, x, t)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema:
            with torch.no_grad():
                torch._foreach_lerp_(*self._ema_pairs, 1 - self.cfg.ema)
        self.step += 1
        return loss.item(), bpp.item(), mse.item()

    def withheld(self) -> float:
        """Share of the rate's gradient withheld from the encoder on the woken channels now.

        Channels added by widening start below the rounding threshold, where the noise proxy
        charges any signal steeply at the floor scale, so they never open (session 9). While the
        encoder is spared their rate they can open, and the entropy model, which still gets the
        full gradient, learns to predict them; the share then fades linearly to nothing.
        """
        cfg = self.cfg
        if not cfg.wake_start <= self.step < cfg.wake_end:
            return 0.0
        return cfg.wake_discount * (cfg.wake_end - self.step) / (cfg.wake_end - cfg.wake_start)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(pixels, levels, and with `latent_samples` their cached latents, else None)."""
        if self.latents is not None:
            x, t, y = self.latents.batch(self.data.train, self.cfg.batch, self.cfg.crop, self.rng)
            return x.to(self.device), t.to(self.device), y.to(self.device)
        x = torch.from_numpy(sample_batch(self.data.train, self.cfg.batch, self.cfg.crop, self.rng))
        t = torch.from_numpy(self.rng.uniform(0, self.model.levels - 1, self.cfg.batch))
        return x.to(self.device), t.float().to(self.device), None

    @torch.no_grad()
    def validate(self) -> list[dict]:
        """Estimated bpp and PSNR (rounded latents, no noise) at the ends and middle of the range."""
        self.model.eval()
        rows = []
        for t_val in (0.0, (self.model.levels - 1) / 2, float(self.model.levels - 1)):
            bits = se = pixels = 0.0
            for i in range(0, len(self.data.val), 8):
                x = torch.from_numpy(np.asarray(self.data.val[i : i + 8]).transpose(0, 3, 1, 2)
                                     .astype(np.float32) / 255.0).to(self.device)
                t = torch.full((x.shape[0],), t_val, device=self.device)
                with self._autocast():
                    out = self.model(x, t, noise=False)
                bits += out["bits"].sum().item()
                se += ((out["x_hat"].clamp(0, 1) - x) ** 2).mean(dim=(1, 2, 3)).sum().item()
                pixels += x.shape[0] * x.shape[2] * x.shape[3]
            mse = se / len(self.data.val)
            rows.append({"step": self.step, "t": t_val, "bpp": bits / pixels, "psnr": psnr(mse)})
        return rows

    def _log_validation(self, logger: MetricLogger) -> None:
        logger.val(self.validate())
        if self.ema:
            with swapped_in(self.model, self.ema):
                logger.val(self.validate(), "val_ema.csv")

    def _request_stop(self, *_: object) -> None:
        self.stop_requested = True

    def _should_stop(self, started: float) -> bool:
        cfg = self.cfg
        stop = self.stop_requested or (cfg.steps and self.step >= cfg.steps) or (
            cfg.budget_seconds and time.time() - started >= cfg.budget_seconds)
        if self.world > 1:  # all ranks stop at the same step
            flag = torch.tensor([1.0 if stop else 0.0])
            dist.all_reduce(flag)
            stop = flag.item() > 0
        return bool(stop)

    def run(self) -> None:
        cfg = self.cfg
        if self.rank == 0:
            CropCache.build(Path(cfg.data), Path(cfg.cache), cfg.cache_crop,
                            cfg.crops_per_image, cfg.val_every_nth_file, val_size=cfg.val_crop)
        if self.world > 1:
            dist.barrier()
        self.data = CropCache.open(Path(cfg.cache))
        self.latents = None
        if cfg.latent_samples:  # its own random stream: a resumed run draws as an uninterrupted one
            with progress.shown(cfg.progress and self.rank == 0):
                self.latents = LatentCache.build(self.model, self.data.train, cfg.latent_samples, cfg.crop,
                                                 self.out / "latents", np.random.default_rng(cfg.seed))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        logger = MetricLogger(self.out, self.step) if self.rank == 0 else None
        bar = None
        if self.rank == 0 and cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps or None, initial=self.step, unit="step", dynamic_ncols=True)
        started, last_ckpt = time.time(), time.time()
        seg_wall, seg_cpu = time.time(), time.process_time()
        window: list[tuple[float, float, float]] = []
        while not self._should_stop(started):
            window.append(self.train_step(*self.next_batch()))
            now = time.time()
            self.wall += now - seg_wall
            self.cpu += time.process_time() - seg_cpu
            seg_wall, seg_cpu = now, time.process_time()
            if logger and self.step % cfg.log_steps == 0:
                loss, bpp, mse = (float(np.mean(c)) for c in zip(*window, strict=True))
                window.clear()
                row = {"step": self.step, "loss": loss, "bpp": bpp, "psnr": psnr(mse),
                       "lr": self.scheduler.get_last_lr()[0], "wall_s": self.wall,
                       "cpu_s": self.cpu}
                logger.train(row)
                if bar is not None:
                    left = cfg.budget_seconds - (now - started) if cfg.budget_seconds else None
                    bar.set_postfix(loss=f"{loss:.3f}", bpp=f"{bpp:.3f}", psnr=f"{row['psnr']:.2f}",
                                    **({"budget_left": f"{left / 60:.0f}min"} if left else {}))
            if bar is not None:
                bar.update(1)
            if logger and cfg.validate_steps and self.step % cfg.validate_steps == 0:
                self._log_validation(logger)
            if now - last_ckpt >= cfg.checkpoint_minutes * 60:
                self.save_checkpoint()
                last_ckpt = time.time()
        self.save_checkpoint()
        if logger and cfg.validate_steps and self.step % cfg.validate_steps:
            self._log_validation(logger)  # the weights the segment ends on, e.g. to pick for export
        if bar is not None:
            bar.close()
        if logger:
            logger.close()
        if self.world > 1:
            self._leave_group()

    def _leave_group(self) -> None:
        """Tear gloo down in step on every rank, while the interpreter is whole: DDP's reducer
        holds the process group, so it goes first and the group's threads are joined here, not
        by a destructor at interpreter exit (where a rank could abort after a finished run)."""
        self.net = self.model
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


class MetricLogger:
    """Appends train/val metrics to CSV files and TensorBoard in the run folder."""

    def __init__(self, out: Path, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.out = out
        for name in ("train.csv", "val.csv", "val_ema.csv"):
            self._drop_after(out / name, step)
        self.tb = SummaryWriter(str(out / "tb"), purge_step=step + 1)

    @staticmethod
    def _drop_after(path: Path, step: int) -> None:
        """Forget rows logged after the checkpoint the run starts from (a killed run's last
        interval, replayed now), so every step appears once."""
        if not path.exists():
            return
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= step]
        if len(kept) < len(rows):
            with path.open("w", newline="") as f:
                csv.writer(f).writerows(kept)

    def _append(self, name: str, row: dict) -> None:
        path = self.out / name
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def train(self, row: dict) -> None:
        self._append("train.csv", row)
        for k in ("loss", "bpp", "psnr", "lr"):
            self.tb.add_scalar(f"train/{k}", row[k], row["step"])

    def val(self, rows: list[dict], name: str = "val.csv") -> None:
        tag = Path(name).stem
        for row in rows:
            self._append(name, row)
            self.tb.add_scalar(f"{tag}/bpp_t{row['t']:g}", row["bpp"], row["step"])
            self.tb.add_scalar(f"{tag}/psnr_t{row['t']:g}", row["psnr"], row["step"])
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()
