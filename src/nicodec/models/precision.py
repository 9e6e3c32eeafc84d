"""Whether bf16 autocast pays on this machine.

bf16 roughly halves a training step on a CPU with AVX-512, but without it PyTorch's CPU kernels
take a slow path: one 5x5 convolution of a training batch took 111 s in bf16 against 0.49 s in
fp32 on an AVX2-only EPYC (session 17). Training and encoder-side refinement ask here first.
"""

from __future__ import annotations

import torch


def bf16_pays(device: torch.device | str) -> bool:
    """True on a GPU, or on a CPU whose kernels have a fast bf16 path (AVX-512 and newer)."""
    kind = torch.device(device).type
    return kind != "cpu" or torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "AVX2")
