"""nicodec: a learned image codec with bit-exact, self-describing .nic files.

    >>> import nicodec
    >>> data = nicodec.compress(image, quality=75)   # PIL image or uint8/uint16 array
    >>> image = nicodec.decompress(data)             # PIL image, original size and mode

The import rule: importing PyTorch takes seconds, so a command that needs no model (`--help`,
`--version`, `info`, a usage error, a thumbnail from a file's preview) must never load it, nor any
package of an optional extra. This package, `nicodec.cli.*`, `codec.api`, `codec.image`,
`codec.preview`, `bitstream`, `storage`, `plugins.pillow`, `nicodec.models` itself and
`models.draft` import torch, the models and every optional package inside the functions that use
them, never at module level (tests/cli/test_startup.py checks; benchmarks/startup.py times it).
"""

from nicodec.codec.api import compress, decompress, info

__version__ = "0.1.0"
__all__ = ["compress", "decompress", "info", "register_nic_opener", "__version__"]


def register_nic_opener() -> None:
    """Register .nic with Pillow, as `pillow_heif.register_heif_opener()` does for HEIF."""
    from nicodec.plugins.pillow import register_nic_opener as register

    register()
