"""The offline ZIP index: every ZIP the zipcodes package places is found."""

import zipcodes

from app.geocoding import all_zip_places, zip_centroid


def test_the_index_holds_every_zip_the_package_places() -> None:
    placed = {
        entry["zip_code"]: (float(entry["lat"]), float(entry["long"]))
        for entry in zipcodes.list_all()
        if entry["lat"] and entry["long"]
    }
    indexed = {place.zip: (place.latitude, place.longitude) for place in all_zip_places()}
    assert indexed == placed
    assert len(indexed) > 40_000


def test_a_zip_plus_4_is_found_by_its_first_five_digits() -> None:
    place = zip_centroid("60614-1234")
    assert place is not None
    assert (place.city, place.state) == ("Chicago", "IL")
