"""Model zoo: one name per architecture, used by train, encode and eval (`--model`)."""

from __future__ import annotations

from nicodec.models.base import VariableRateModel
from nicodec.models.checkerboard import CheckerboardHyperprior
from nicodec.models.factorized import FactorizedPrior, SeedAutoencoder
from nicodec.models.fast import FastCheckerboard
from nicodec.models.hyperprior import MeanScaleHyperprior

MODELS: dict[str, type[VariableRateModel]] = {
    cls.name: cls
    for cls in (MeanScaleHyperprior, CheckerboardHyperprior, FastCheckerboard, FactorizedPrior,
                SeedAutoencoder)
}


def build_model(name: str, **config: object) -> VariableRateModel:
    """Instantiate a registered model; unknown names raise a ValueError listing the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}' (choose from: {', '.join(sorted(MODELS))})")
    return MODELS[name](**config)
