"""nicodec: a learned image codec with bit-exact, self-describing .nic files.

    >>> import nicodec
    >>> data = nicodec.compress(image, quality=75)   # PIL image or uint8/uint16 array
    >>> image = nicodec.decompress(data)             # PIL image, original size and mode
"""

from nicodec.codec.api import compress, decompress, info

__version__ = "0.1.0"
__all__ = ["compress", "decompress", "info", "__version__"]
