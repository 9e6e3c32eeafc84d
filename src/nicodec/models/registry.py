"""Model zoo: one name per architecture, used by train, encode and eval (`--model`)."""

from __future__ import annotations

from torch import nn

from nicodec.models.hyperprior import MeanScaleHyperprior

MODELS: dict[str, type[nn.Module]] = {
    MeanScaleHyperprior.name: MeanScaleHyperprior,
}
DEFAULT_MODEL = MeanScaleHyperprior.name


def build_model(name: str, **config: object) -> nn.Module:
    """Instantiate a registered model; unknown names raise a ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}' (choose from: {', '.join(sorted(MODELS))})")
    return MODELS[name](**config)
