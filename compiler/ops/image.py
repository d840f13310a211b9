"""ImageDecoder: an encoded image (the bytes of a BMP, PNM, TIFF, PNG, JPEG, WebP, JPEG 2000 or GIF file) decoded
at run time into [height, width, channels] uint8, RGB, BGR or grayscale, as Pillow's Image.open gives it (the ONNX
reference); the decoders are runtime_c/mlcc_image.h, mlcc_jpeg.h, mlcc_webp.h, mlcc_vp8l.h, mlcc_jpeg2k.h
and mlcc_gif.h.

Height and width depend on the data: the output is stored with an upper bound of MAX_SIDE x MAX_SIDE pixels
unless --output-bound gives another (Value.dynamic_axes (0, 1); the run reports the decoded shape through
`PREFIX_output_shape`, and the image is written contiguously at the start of the buffer). A stream the decoders
do not read (JPEG 2000 with coding options, arithmetic-coded JPEG, JPEG-compressed TIFF, ...)
makes the run return MLCC_ERR_UNSUPPORTED_DATA, an image larger than the bound MLCC_ERR_OVER_BOUND, a corrupt one
MLCC_ERR_BAD_DATA.
The op is never folded: even a constant image is decoded at run time (the compiler has no decoder of its own).
"""

from __future__ import annotations

from ..errors import ModelError
from ..ir.dtypes import UINT8
from ..ir.graph import Node
from .common import need_input
from .registry import Kernel, OpDef, register

MAX_SIDE = 4096  # the largest height and width a compiled model decodes (4K frames fit)
MODES = {"RGB": ("MLCC_IMAGE_RGB", 3), "BGR": ("MLCC_IMAGE_BGR", 3), "Grayscale": ("MLCC_IMAGE_GRAY", 1)}


@register("ImageDecoder", since=20)
class ImageDecoder(OpDef):
    def _mode(self, node: Node) -> tuple[str, int]:
        fmt = node.attr("pixel_format", "RGB")
        if fmt not in MODES:
            raise ModelError(f"ImageDecoder {node.name!r}: pixel_format {fmt!r} is not one of {', '.join(MODES)}")
        return MODES[fmt]

    def infer(self, node: Node):
        x = need_input(node, 0)
        if x.dtype != UINT8 or x.rank != 1:
            raise ModelError(
                f"ImageDecoder {node.name!r}: the encoded stream must be a 1-D uint8 tensor, got {x.dtype}{list(x.shape)}"
            )
        return [(UINT8, (MAX_SIDE, MAX_SIDE, self._mode(node)[1]))]

    def dynamic_axes(self, node: Node):
        return [(0, 1)]

    def foldable(self, node: Node) -> bool:
        return False

    def lower(self, node: Node) -> list[Kernel]:
        x, y = need_input(node, 0), node.outputs[0]
        mode, channels = self._mode(node)
        params = {"n": x.size, "hmax": y.shape[0], "wmax": y.shape[1], "mode": mode, "checks_data": True}
        return [Kernel("image_decoder", "image_decoder", [x], [y], params, ["X", "Y"])]
