"""Offline geocoding: ZIP code → centroid, "City, ST" → mean of the city's ZIP
centroids, from the `zipcodes` package (GeoNames data).

Never makes a network request. The index is built once, on first use.
"""

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache

from app.locations.models import GeocodePrecision


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


# APO, FPO and DPO addresses (Armed Forces Americas, Europe, Pacific) name a
# military post office, not a place: the package puts the Pacific ones in Alaska
# or the North Sea. No such ZIP or "city" is on the map.
MILITARY_STATES = frozenset({"AA", "AE", "AP"})


@cache
def _zip_index() -> dict[str, ZipPlace]:
    import zipcodes

    index: dict[str, ZipPlace] = {}
    unplaced: list[ZipPlace] = []
    # A hundredth of the ZIPs at a time (by their first two digits): the package hands
    # each entry over as a dict of a dozen fields, and all 42,000 at once (`list_all`)
    # took ~100 MB for a moment, as much as the rest of an importing process, and
    # about three times as long (the collector walked the dicts again and again).
    # A tenth at a time takes as long, and 9 MB more.
    for prefix in (f"{n:02d}" for n in range(100)):
        for entry in zipcodes.similar_to(prefix):  # type: ignore[no-untyped-call]
            if entry["state"] in MILITARY_STATES:
                continue
            try:
                latitude, longitude = float(entry["lat"]), float(entry["long"])
            except (TypeError, ValueError):
                continue
            place = ZipPlace(
                zip=entry["zip_code"],
                city=entry["city"],
                state=entry["state"],
                latitude=latitude,
                longitude=longitude,
                standard=entry.get("zip_code_type") == "STANDARD" and bool(entry.get("active")),
                area_codes=tuple(entry.get("area_codes") or ()),
            )
            if latitude == 0 and longitude == 0:
                unplaced.append(place)
            else:
                index[place.zip] = place
    index.update(_placed_by_city(unplaced, index.values()))
    return index


def _placed_by_city(
    unplaced: Iterable[ZipPlace], placed: Iterable[ZipPlace]
) -> dict[str, ZipPlace]:
    """ZIPs the data puts at 0°, 0°, meaning no position, each at the mean of its
    city's placed ZIPs; a ZIP whose city has none (most are military APO/FPO
    ZIPs) stays out, unknown.

    The package has 872 such ZIPs: PO-box, company and military ZIPs, and one
    delivery ZIP (77352, Livingston, TX). Taken as positions, they put a
    therapist in the Gulf of Guinea and dragged city centroids hundreds of
    miles: "Kennesaw, GA" lay in the Atlantic, "Indianapolis, IN" 80 miles off.
    """
    states = {place.state for place in unplaced}
    members = _by_city(place for place in placed if place.state in states)
    found = {}
    for place in unplaced:
        near = members.get((city_key(place.city), place.state))
        if near:
            latitude, longitude = _mean(near)
            found[place.zip] = replace(place, latitude=latitude, longitude=longitude)
    return found


def _by_city(places: Iterable[ZipPlace]) -> dict[tuple[str, str], list[ZipPlace]]:
    """The places grouped by (city_key, state)."""
    members: dict[tuple[str, str], list[ZipPlace]] = defaultdict(list)
    keys: dict[str, str] = {}  # a city has several ZIPs: its key is worked out once
    for place in places:
        key = keys.get(place.city)
        if key is None:
            key = keys[place.city] = city_key(place.city)
        members[(key, place.state)].append(place)
    return members


def _mean(places: list[ZipPlace]) -> tuple[float, float]:
    """The mean latitude and longitude of the places."""
    return (
        sum(p.latitude for p in places) / len(places),
        sum(p.longitude for p in places) / len(places),
    )


def zip_centroid(zip_code: str) -> ZipPlace | None:
    """The centroid of a 5-digit ZIP (a ZIP+4 is looked up by its first five digits)."""
    return _zip_index().get(zip_code[:5])


def all_zip_places() -> list[ZipPlace]:
    return list(_zip_index().values())


# City spellings that vary: "Saint Louis", "St. Louis", "St Louis" are one key.
_CITY_WORDS = {"SAINT": "ST", "SAINTE": "STE", "FORT": "FT", "MOUNT": "MT", "PORT": "PT"}


def city_key(city: str) -> str:
    """Case, accents, punctuation and the Saint/St./Ste. family of spellings do not matter."""
    ascii_city = unicodedata.normalize("NFKD", city).encode("ascii", "ignore").decode().upper()
    words = re.sub(r"[^A-Z0-9 ]", " ", ascii_city).split()
    return " ".join(_CITY_WORDS.get(word, word) for word in words)


@dataclass(frozen=True, slots=True)
class CityPlace:
    city: str
    state: str
    latitude: float
    longitude: float
    zip_count: int


@cache
def _city_index() -> dict[tuple[str, str], CityPlace]:
    return {
        key: CityPlace(places[0].city, key[1], *_mean(places), zip_count=len(places))
        for key, places in _by_city(_zip_index().values()).items()
    }


def city_centroid(city: str, state: str) -> CityPlace | None:
    """The mean of the city's ZIP centroids, or None for a city the index does not know."""
    return _city_index().get((city_key(city), state.strip().upper()))


UNPLACEABLE = "unknown ZIP code and city: the address cannot be placed without coordinates"

# Coordinates farther than this from both the ZIP's and the city's centre are
# another place's: the largest ZIP areas reach about 100 km from their centres.
# Swapped columns and a neighbouring record's values are the usual causes; such a
# practice would be missing from searches around its own address.
FARTHEST_KM = 200.0


def is_far_from(
    latitude: float, longitude: float, zip_code: str | None, city: str | None, state: str | None
) -> bool:
    """Whether a point lies farther than FARTHEST_KM from both the address's ZIP's and
    city's centres (False when the table knows neither)."""
    from app.search.geo import haversine_km_py  # the search's own distance

    centres = [
        place
        for place in (
            zip_centroid(zip_code) if zip_code else None,
            city_centroid(city, state) if city and state else None,
        )
        if place is not None
    ]
    return bool(centres) and all(
        haversine_km_py(latitude, longitude, place.latitude, place.longitude) > FARTHEST_KM
        for place in centres
    )


@dataclass(frozen=True, slots=True)
class Placement:
    latitude: float
    longitude: float
    precision: GeocodePrecision


def place_address(zip_code: str, city: str, state: str) -> Placement | None:
    """Where an address without coordinates goes: its ZIP's centroid, else (a ZIP
    the table does not know: new, PO-box only, mistyped) its city's; None when
    neither is known (a military APO/FPO address, say)."""
    zip_place = zip_centroid(zip_code)
    if zip_place is not None:
        return Placement(zip_place.latitude, zip_place.longitude, GeocodePrecision.ZIP_CENTROID)
    city_place = city_centroid(city, state)
    if city_place is not None:
        return Placement(city_place.latitude, city_place.longitude, GeocodePrecision.CITY_CENTROID)
    return None


def warm_up() -> None:
    """Builds both indexes (about a second), so no request pays for it."""
    _city_index()
