"""Brand images: every upload is decoded and re-encoded to a fresh PNG, so only pixels are kept.

Accepted: PNG, JPEG or WebP (recognised by their signature bytes, then decoded by Pillow with
only that format allowed), at most 512 KB, at least 128 by 128 pixels and at most 25 megapixels
(checked from the header before any pixel is decoded; Pillow's own decompression-bomb guard,
``Image.MAX_IMAGE_PIXELS``, stays on as well). The stored PNG is built from the raw pixels, so no
EXIF, ICC, text chunk or trailing data survives; EXIF orientation is applied first. Images larger
than 1024 pixels on a side are scaled down. Stored as ``BrandAsset`` whose id is the SHA-256 of
the PNG.
"""

from __future__ import annotations

import hashlib
import io

import anyio.to_thread
import msgspec
from PIL import Image, ImageOps

from app import clock
from app.configuration.tables import BrandAsset
from app.i18n import gettext as _

MAX_UPLOAD_BYTES = 512 * 1024
MIN_SIDE = 128
MAX_PIXELS = 25_000_000
MAX_STORED_SIDE = 1024
FORMATS = ("PNG", "JPEG", "WEBP")


class ImageRejected(ValueError):
    """``str(error)`` is the message to show beside the field."""


class CleanImage(msgspec.Struct, frozen=True):
    data: bytes
    width: int
    height: int

    @property
    def id(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(data: bytes) -> str | None:
    """The format the signature bytes announce, when it is one we accept."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _not_an_image(what: str) -> ImageRejected:
    return ImageRejected(_("The %(what)s must be a PNG, JPEG or WebP image.") % {"what": what})


def reencode(data: bytes, what: str) -> CleanImage:
    """Decode ``data`` and return it as a clean PNG; ``ImageRejected`` with a message otherwise.
    ``what`` names the image in messages ("logo", "icon")."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageRejected(
            _("The %(what)s file is %(size)d KB: it must be 512 KB or smaller.")
            % {"what": what, "size": round(len(data) / 1024)}
        )
    kind = sniff(data)
    if kind is None:
        raise _not_an_image(what)
    try:
        return _decode(data, kind, what)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard (MAX_IMAGE_PIXELS) fires at open, before ours: an error past twice
        # its limit, a warning (an error where warnings are errors) past it.
        raise _too_many_pixels(what) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError):
        raise _not_an_image(what) from None


def _too_many_pixels(what: str) -> ImageRejected:
    return ImageRejected(
        _("The %(what)s has too many pixels: use an image of at most 5000 by 5000 pixels.")
        % {"what": what}
    )


def _decode(data: bytes, kind: str, what: str) -> CleanImage:
    # Header only: the size is known before any pixel is decoded.
    with Image.open(io.BytesIO(data), formats=[kind]) as probe:
        width, height = probe.size
        if width * height > MAX_PIXELS:
            raise _too_many_pixels(what)
        if width < MIN_SIDE or height < MIN_SIDE:
            raise ImageRejected(
                _(
                    "The %(what)s must be at least %(min)d by %(min)d pixels "
                    "(this one is %(width)d by %(height)d)."
                )
                % {"what": what, "min": MIN_SIDE, "width": width, "height": height}
            )
        probe.verify()
    # verify() leaves the image unusable: decode from a fresh open.
    with Image.open(io.BytesIO(data), formats=[kind]) as image:
        image.load()
        upright = ImageOps.exif_transpose(image) or image
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
            upright.mode == "P" and "transparency" in upright.info
        )
        converted = upright.convert("RGBA" if has_alpha else "RGB")
    converted.thumbnail((MAX_STORED_SIDE, MAX_STORED_SIDE), Image.Resampling.LANCZOS)
    # A new image from the raw pixels carries no metadata at all.
    clean = Image.frombytes(converted.mode, converted.size, converted.tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=True)
    return CleanImage(data=buffer.getvalue(), width=clean.width, height=clean.height)


async def reencode_async(data: bytes, what: str) -> CleanImage:
    """``reencode`` off the event loop (decoding is CPU work)."""
    return await anyio.to_thread.run_sync(reencode, data, what)


async def store(image: CleanImage) -> str:
    """Keep ``image`` as a ``BrandAsset`` (once: the id is its content hash); return the id."""
    await BrandAsset.insert(
        BrandAsset(
            id=image.id,
            content_type="image/png",
            data=image.data,
            width=image.width,
            height=image.height,
            created=clock.now(),
        )
    ).on_conflict(action="DO NOTHING")
    return image.id
