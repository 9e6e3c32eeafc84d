"""Grow a trained model's widths (latent M, transforms N) without changing what it computes
(`nicodec train --init`).

Training a wider model from scratch would throw away every CPU-hour spent so far; widening keeps
each trained weight in place and adds channels that start inert:

- the analysis transform's new latent channels output exactly zero, and the hyperprior and the
  context correction predict mean 0 and the smallest scale for them, so they cost no bits;
- every weight that reads a new unit (a latent channel, or a hidden unit of the transforms, which
  starts with fresh random weights) starts at zero, so old units compute what they did, except
  the synthesis transform's weights on the new latent channels: those inputs are exactly zero, so
  random weights there change nothing yet give the new channels a gradient (with zeros on both
  sides of the latent, the new channels would never receive one);
- the new channels' gain tables start at the mean of the trained ones, new units' level-affine
  tables at the identity;
- the hyper-latent keeps its width (`N_hyper`): a new hyper-latent channel would cost bits from
  its untrained density.

Latent-shaped dimensions (k·M wide, e.g. the (mean, scale) halves of 2M) grow block by block,
so a trained index keeps its meaning; hidden widths grow at the end.
"""

from __future__ import annotations

import torch
from torch import nn

from nicodec.models.base import AFFINE_TABLES, GAIN_TABLES
from nicodec.models.layers import GDN

WIDTHS = ("N", "M")
ADDABLE = ("level_affine", "res_blocks")  # parts that start as the identity: may be added
ONLY_WIDTHS = ("only the widths N and M may grow (and level_affine or res_blocks be added); the "
               "hyper-latent keeps its width: set N_hyper")
LATENT_OUTPUTS = ("g_a", "h_s", "entropy_net")  # last layers: latent, its (mean, scale), correction
READS_LATENT = "g_s"  # its first layer reads the quantized latent


def index_map(old: int, new: int, m_old: int, m_new: int) -> torch.Tensor:
    """Where each of `old` indices of a dimension goes when it grows to `new`."""
    if old == new:
        return torch.arange(old)
    k, rest = divmod(old, m_old)
    if rest == 0 and new == k * m_new:  # k blocks of M: each keeps its start
        return (torch.arange(old) // m_old) * m_new + torch.arange(old) % m_old
    if new < old:
        raise ValueError(f"cannot shrink a dimension from {old} to {new}")
    return torch.arange(old)


def _added(index: torch.Tensor, size: int) -> torch.Tensor:
    keep = torch.ones(size, dtype=torch.bool)
    keep[index] = False
    return keep.nonzero().squeeze(1)


def _last_layer(model: nn.Module, name: str) -> str | None:
    net = getattr(model, name, None)
    if not isinstance(net, nn.Sequential):
        return None
    convs = [n for n, m in net.named_children() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    return f"{name}.{convs[-1]}" if convs else None


def architecture(config: dict) -> dict:
    """A model's settings without its rate ladder, which a run may re-sample (see `regrid`)."""
    return {k: v for k, v in config.items() if k not in ("levels", "lambda_min", "lambda_max")}


def fixed_architecture(config: dict) -> dict:
    """What widening must leave unchanged: the architecture settings but N and M, and the
    hyper-latent's width (which is N unless the model says otherwise)."""
    fixed = {k: v for k, v in architecture(config).items()
             if k not in WIDTHS + ("N_hyper",) + ADDABLE}
    return {**fixed, "N_hyper": config.get("N_hyper", config.get("N"))}


def can_widen(old: dict, new: dict) -> bool:
    """Whether a model of `old` settings grows into one of `new` (or is the same); level-affine
    tables and residual blocks may be added (they start as the identity), not taken away."""
    return fixed_architecture(old) == fixed_architecture(new) and all(
        old.get(k) is not None and new.get(k) is not None and old[k] <= new[k] for k in WIDTHS
    ) and all(old.get(k, 0) <= new.get(k, 0) for k in ADDABLE)


def widen_state(old: dict[str, torch.Tensor], old_config: dict, model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict for `model` that computes what `old` (a model of `old_config`) computes.

    Only N and M may differ, and only grow. Entries of `model` that `old` lacks (a sub-network a
    smaller zoo model does not have) keep their fresh initialisation. The gain tables must
    already be on `model`'s rate ladder.
    """
    if not can_widen(old_config, model.config):
        raise ValueError(f"cannot widen a model of {old_config} into one of {model.config} "
                         f"({ONLY_WIDTHS})")
    m_old, m_new = old_config["M"], model.config["M"]
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    zero_new_outputs = {_last_layer(model, n) for n in LATENT_OUTPUTS}
    for key, value in old.items():
        if key not in state:
            raise ValueError(f"cannot widen into this model: it has no '{key}'")
        layer, _, pname = key.rpartition(".")
        module = model.get_submodule(layer) if layer else model
        if key in GAIN_TABLES:
            cols = index_map(value.shape[1], state[key].shape[1], m_old, m_new)
            state[key][:] = value.mean(dim=1, keepdim=True)
            state[key][:, cols] = value
        elif key in AFFINE_TABLES:  # blocks of N, one per GDN layer; new units' start at identity
            cols = index_map(value.shape[1], state[key].shape[1], old_config["N"], model.config["N"])
            state[key].zero_()
            state[key][:, cols] = value
        elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d | GDN):
            out_dim = 1 if isinstance(module, nn.ConvTranspose2d) and pname == "weight" else 0
            _place(state[key], value, m_old, m_new, out_dim, zero_reads=layer != f"{READS_LATENT}.0")
            if layer in zero_new_outputs:
                kept = index_map(value.shape[out_dim], state[key].shape[out_dim], m_old, m_new)
                state[key].index_fill_(out_dim, _added(kept, state[key].shape[out_dim]), 0.0)
        elif value.shape == state[key].shape:
            state[key] = value.clone()
        else:
            raise ValueError(f"cannot widen '{key}' from {tuple(value.shape)} to {tuple(state[key].shape)}")
    return state


def _place(grown: torch.Tensor, old: torch.Tensor, m_old: int, m_new: int, out_dim: int,
           zero_reads: bool) -> None:
    """Copy `old` into its grown slot; weights from new inputs to old outputs start at zero."""
    maps = [index_map(o, n, m_old, m_new) for o, n in zip(old.shape, grown.shape, strict=True)]
    if old.dim() >= 2 and zero_reads:
        in_dim = 1 - out_dim
        added = _added(maps[in_dim], grown.shape[in_dim])
        if out_dim == 0:
            grown[maps[0][:, None], added[None, :]] = 0
        else:
            grown[added[:, None], maps[1][None, :]] = 0
    grown[torch.meshgrid(*maps, indexing="ij")] = old
