"""Finding and sharing locations: one row per normalised address."""

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.geocoding import UNPLACEABLE, place_address
from app.locations.address import address_key
from app.locations.models import GeocodePrecision, Location
from app.locations.schemas import LocationIn
from app.therapists.models import Practice

_DETAILS = ("name", "phone", "fax", "facility_type")


def key_of(data: LocationIn) -> str:
    return address_key(
        line1=data.address_line1,
        line2=data.address_line2,
        city=data.city,
        state=data.state,
        zip_code=data.zip,
    )


def upsert_location(
    session: Session, *, data: LocationIn, loc: Sequence[str | int] = ("location",)
) -> Location:
    """The location at this address, created if new; the latest non-empty details win."""
    key = key_of(data)
    location = session.scalar(select(Location).where(Location.address_key == key))
    if location is None:
        location = Location(
            address_key=key,
            address_line1=data.address_line1,
            address_line2=data.address_line2,
            city=data.city,
            state=data.state,
            zip=data.zip,
            accessibility=[a.value for a in data.accessibility],
        )
        session.add(location)
    for name in _DETAILS:
        value = getattr(data, name)
        if value is not None:
            setattr(location, name, value)
    if data.accessibility:
        location.accessibility = [a.value for a in data.accessibility]
    _place(location, data, loc)
    return location


def _place(location: Location, data: LocationIn, loc: Sequence[str | int]) -> None:
    if data.latitude is not None and data.longitude is not None:
        location.latitude, location.longitude = data.latitude, data.longitude
        location.geocode_precision = GeocodePrecision.PROVIDED
        return
    if location.id is not None:  # keep what an existing location already has
        return
    place = place_address(data.zip, data.city, data.state)
    if place is None:
        raise InvalidInput.at([*loc, "zip"], UNPLACEABLE)
    location.latitude, location.longitude = place.latitude, place.longitude
    location.geocode_precision = place.precision


def delete_orphans(session: Session, location_ids: Iterable[int]) -> None:
    """Remove locations that no practice uses any more."""
    ids = list(set(location_ids))
    if not ids:
        return
    session.flush()
    session.execute(
        delete(Location)
        .where(Location.id.in_(ids))
        .where(~exists().where(Practice.location_id == Location.id))
        .execution_options(synchronize_session=False)
    )
