"""Offline geocoding: ZIP code → centroid, from the `zipcodes` package (GeoNames data).

Never makes a network request. The index is built once, on first use.
"""

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class ZipPlace:
    zip: str
    city: str
    state: str
    latitude: float
    longitude: float
    # An active delivery-area ZIP (not a PO-box-only or single-company ZIP).
    standard: bool
    area_codes: tuple[str, ...]


@cache
def _zip_index() -> dict[str, ZipPlace]:
    import zipcodes

    index = {}
    for entry in zipcodes.list_all():  # type: ignore[no-untyped-call]
        try:
            latitude, longitude = float(entry["lat"]), float(entry["long"])
        except (TypeError, ValueError):
            continue
        index[entry["zip_code"]] = ZipPlace(
            zip=entry["zip_code"],
            city=entry["city"],
            state=entry["state"],
            latitude=latitude,
            longitude=longitude,
            standard=entry.get("zip_code_type") == "STANDARD" and bool(entry.get("active")),
            area_codes=tuple(entry.get("area_codes") or ()),
        )
    return index


def zip_centroid(zip_code: str) -> ZipPlace | None:
    """The centroid of a 5-digit ZIP (a ZIP+4 is looked up by its first five digits)."""
    return _zip_index().get(zip_code[:5])


def all_zip_places() -> list[ZipPlace]:
    return list(_zip_index().values())
