"""A model built for decode speed: the shipped encoder, a light decoder (issue 35).

The decoder's cost is what a user waits for, the encoder's only what the writer pays. So `fast`
keeps the default model's analysis transform and hyper-analysis (and its checkerboard coding
procedure, `CheckerboardTwin`), and replaces everything the decoder runs with networks about
eight times cheaper (Yang & Mandt 2023, "shallow decoders"):

- synthesis: four transposed convolutions, 128/64/32 channels, ReLU, nothing heavy at full
  resolution (about 8.6 kMAC per pixel, against 52 k);
- hyper-synthesis with a 1x1 last layer, a 128-channel checkerboard context and a two-layer
  entropy network (about 4.3 kMAC per pixel together, against 29 k), every layer at 1/16
  resolution on 8-bit inputs (trained quantization-aware), so that the exact integer twin runs
  them in float32 matrix products rather than float64 (`models.integer`).

`inherits` names what a warm start takes from a `checkerboard` file (`nicodec train --init`): the
encoder side, whose latents and hyper-latent's density are already good; the light networks
start fresh and learn to decode them (`network_lr_scale` can hold the encoder fixed meanwhile).
"""

from __future__ import annotations

from torch import nn

from nicodec.models.checkerboard import CheckerboardConv, CheckerboardHyperprior
from nicodec.models.integer import eight_bit
from nicodec.models.layers import conv, deconv

SYNTHESIS_WIDTHS = (128, 64, 32)  # channels at 1/8, 1/4, 1/2 resolution
HYPER_WIDTHS = (192, 256)  # hyper-synthesis channels at 1/32 and 1/16 resolution
CONTEXT_CHANNELS = 128
ENTROPY_HIDDEN = 256
# Input grids (fractional bits) of the float32 integer layers, from the trained stage-1 model's
# activations on training crops: hidden ReLU outputs reach ~5 (99.9 %, h_s) and ~10 (entropy
# network); the entropy network's input (hyperprior's mean and scale, context) ~5, the decoded
# anchors ~28 (docs/TRAINING_LOG.md, session 30).
HIDDEN_FRACTION = 4  # h_s: 0..15.9 in steps of 1/16
ENTROPY_FRACTION = 3  # entropy network: -15.9..15.9 in, 0..31.9 hidden, steps of 1/8
ANCHOR_FRACTION = 1  # the context's decoded anchors: -63.5..63.5 in steps of 1/2


class FastCheckerboard(CheckerboardHyperprior):
    name = "fast"
    inherits = ("g_a", "g_a_res", "g_a_log_scale", "g_a_shift", "log_gain", "h_a", "z_prior")

    @staticmethod
    def new_synthesis(N: int, M: int) -> nn.Sequential:
        a, b, c = SYNTHESIS_WIDTHS
        return nn.Sequential(deconv(M, a), nn.ReLU(inplace=True), deconv(a, b), nn.ReLU(inplace=True),
                             deconv(b, c, 3), nn.ReLU(inplace=True), deconv(c, 3, 3))

    @staticmethod
    def new_hyper_synthesis(H: int, M: int) -> nn.Sequential:
        """The first layer runs at 1/32 resolution on the decoded hyper-latent, in float64; the
        two at 1/16 take 8-bit inputs and run in float32 (`models.integer`)."""
        a, b = HYPER_WIDTHS
        return nn.Sequential(deconv(H, a), nn.ReLU(inplace=True),
                             eight_bit(deconv(a, b), HIDDEN_FRACTION, signed=False), nn.ReLU(inplace=True),
                             eight_bit(conv(b, 2 * M, 1, 1), HIDDEN_FRACTION, signed=False))

    @staticmethod
    def new_context(M: int) -> nn.Sequential:
        masked = CheckerboardConv(M, CONTEXT_CHANNELS)
        return nn.Sequential(eight_bit(masked, ANCHOR_FRACTION, signed=True))

    @staticmethod
    def new_entropy_net(M: int, ctx: int) -> nn.Sequential:
        first = eight_bit(conv(2 * M + ctx, ENTROPY_HIDDEN, 1, 1), ENTROPY_FRACTION, signed=True)
        last = eight_bit(conv(ENTROPY_HIDDEN, 2 * M, 1, 1), ENTROPY_FRACTION, signed=False)
        return nn.Sequential(first, nn.ReLU(inplace=True), last)
