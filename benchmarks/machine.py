"""What machine a benchmark ran on, and how to make an AVX-512 machine compute like an AVX2 one.

The speed targets are stated for two-core AVX2 machines, but the sessions' machines differ: some
have AVX-512 and AMX. The libraries that do nicodec's arithmetic each have a documented switch that
caps the instruction set they dispatch to (oneDNN: convolutions; PyTorch's own kernels; MKL: the
float64 matrix products of the integer networks), so a benchmark's worker can run with AVX2
kernels on a bigger CPU. That is an emulation, not an AVX2 machine: clock, caches and memory stay
this machine's, so its figures say how the kernels scale, and a real AVX2 machine remains the
judge. The baselines' own SIMD dispatch (libaom, dav1d, libwebp, libjxl) has no such switch, so
only nicodec's figures change.
"""

from __future__ import annotations

import platform
from pathlib import Path

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx")  # "amx": any amx_* flag
ISA_CAPS = {
    "native": {},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def cpu() -> tuple[str, dict[str, bool]]:
    """The CPU model and whether the flags that matter for torch's CPU kernels are present."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    present = {f: (any(g.startswith("amx") for g in flags) if f == "amx" else f in flags) for f in FLAGS}
    return fields.get("model name", platform.processor() or "unknown"), present


def describe(isa: str = "native") -> str:
    """One line for a report: the CPU, its flags, and the instruction-set cap if any."""
    name, flags = cpu()
    text = f"{name}; " + ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in flags.items())
    if ISA_CAPS[isa]:
        caps = " ".join(f"{k}={v}" for k, v in ISA_CAPS[isa].items())
        text += f"; nicodec capped to {isa} kernels ({caps}): an emulation, see benchmarks/machine.py"
    return text
