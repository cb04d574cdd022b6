"""Checks a web form's photo before anything of it is kept: type, size, decompression bombs; reads and removes EXIF.

The checked result holds the copy to store (pixels only: EXIF, GPS and comments gone, turned
upright by its orientation tag first) and a smaller copy for pages. The place the camera wrote
into the EXIF is returned too, for a report that came without one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from io import BytesIO
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from hub.errors import InvalidInput, TooLarge
from hub.i18n import N_
from hub.settings import Settings

# What browsers and phones send and every page can show; HEIC and the like are refused with a hint.
ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
DISPLAY_QUALITY = 82
GPS_IFD = 0x8825
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    content_type: str
    width: int
    height: int
    display: bytes
    gps: tuple[float, float] | None


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(Fraction(part)) if not isinstance(part, float) else part for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = degrees + minutes / 60 + seconds / 3600
    return -result if str(ref).upper() in ("S", "W") else result


def _gps(image: Image.Image) -> tuple[float, float] | None:
    """Latitude and longitude from the EXIF GPS block, or None where there is none or it makes no sense."""
    gps = image.getexif().get_ifd(GPS_IFD)
    if GPS_LATITUDE not in gps or GPS_LONGITUDE not in gps:
        return None
    lat = _degrees(gps[GPS_LATITUDE], gps.get(GPS_LATITUDE_REF, "N"))
    lon = _degrees(gps[GPS_LONGITUDE], gps.get(GPS_LONGITUDE_REF, "E"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat, lon) == (0.0, 0.0):
        return None
    return lat, lon


def _refuse_bomb() -> InvalidInput:
    return InvalidInput(N_("Das Bild hat zu viele Bildpunkte, um es zu öffnen. Bitte senden Sie ein kleineres."))


def too_large(settings: Settings) -> TooLarge:
    """The refusal of a photo over RATHAUS_MAX_PHOTO_BYTES, also where a channel says so before sending it."""
    megabytes = settings.max_photo_bytes // 1_048_576
    return TooLarge(N_("Das Foto ist zu groß: höchstens {megabytes} MB."), megabytes=megabytes)


def check_photo(data: bytes, *, settings: Settings) -> CheckedPhoto:
    """The photo made safe to keep, or a refusal that says what is wrong with it."""
    if not data:
        raise InvalidInput(N_("Die Datei ist leer."))
    if len(data) > settings.max_photo_bytes:
        raise too_large(settings)
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice that; here either is a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(BytesIO(data)) as probe:
                # Only the header is read so far: the pixel count is checked before anything is decoded.
                if probe.width * probe.height > settings.max_photo_pixels:
                    raise _refuse_bomb()
                if probe.format not in ALLOWED_FORMATS:
                    raise InvalidInput(N_("Bitte senden Sie ein Foto als JPEG, PNG oder WebP."))
                probe.verify()
            with Image.open(BytesIO(data)) as image:
                image.load()
                gps = _gps(image)
                upright = ImageOps.exif_transpose(image)
                image_format = str(image.format)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse_bomb() from None
        except UnidentifiedImageError:
            raise InvalidInput(N_("Die Datei ist kein Bild. Bitte senden Sie ein Foto (JPEG, PNG, WebP).")) from None
        except (OSError, SyntaxError, ValueError):
            raise InvalidInput(N_("Das Bild ist beschädigt und lässt sich nicht öffnen.")) from None
    # A new image from the pixels alone: saving it writes no EXIF, XMP or comment of the original.
    mode = "RGBA" if image_format != "JPEG" and ("A" in upright.mode or "transparency" in upright.info) else "RGB"
    pixels = upright.convert(mode)
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    stored = BytesIO()
    clean.save(stored, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    display_image = clean.convert("RGB")
    display_image.thumbnail((settings.photo_display_pixels, settings.photo_display_pixels))
    display = BytesIO()
    display_image.save(display, format="JPEG", quality=DISPLAY_QUALITY)
    return CheckedPhoto(
        data=stored.getvalue(),
        content_type=ALLOWED_FORMATS[image_format],
        width=clean.width,
        height=clean.height,
        display=display.getvalue(),
        gps=gps,
    )
