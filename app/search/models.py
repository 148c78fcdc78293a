"""The search projection: one flat row per practice, in spatial order.

Search reads only this table. Each row carries what the filters, the distance
and the name order need, copied from therapists, locations, practices and
participations by `app.search.projection`, which keeps it in step with every
write. Nothing here is a source of truth: `ptdir db rebuild-search` recreates
it from the records at any time.
"""

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, string_enum
from app.locations.models import FacilityType
from app.therapists.models import NAME_KEY, Gender

# Code lists compare byte by byte ("C" collation on PostgreSQL, as on SQLite): they are
# grouped and compared, never shown, and locale-aware comparison is many times slower.
CODE_LIST = Text().with_variant(Text(collation="C"), "postgresql")


class SearchPractice(Base):
    __tablename__ = "search_practices"

    # A spatial key: the 0.1° latitude band and longitude cell of the practice, then
    # its id (see projection.spatial_key). Rows near each other on the map sit next
    # to each other in the table, so a radius search reads few pages.
    # On SQLite it is the rowid itself (INTEGER PRIMARY KEY), which orders the table.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    practice_id: Mapped[int] = mapped_column(
        ForeignKey("practices.id", ondelete="CASCADE"), unique=True
    )
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    # The unit vector of the point: distances are chords, computed with plain
    # arithmetic (app.search.geo) instead of a dozen trigonometric calls per row.
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    z: Mapped[float] = mapped_column(Float)
    accepting_new_patients: Mapped[bool | None] = mapped_column(Boolean)  # None: not known
    telehealth: Mapped[bool | None] = mapped_column(Boolean)
    facility_type: Mapped[FacilityType | None] = mapped_column(
        string_enum(FacilityType, "search_facility_type")
    )
    gender: Mapped[Gender | None] = mapped_column(string_enum(Gender, "search_gender"))
    last_name_key: Mapped[str] = mapped_column(NAME_KEY)
    first_name_key: Mapped[str] = mapped_column(NAME_KEY)
    # The therapist's codes, space-separated with a space at each end (" a b "),
    # so "has code c" is a substring test for " c " on both databases.
    specialties: Mapped[str] = mapped_column(CODE_LIST)
    conditions: Mapped[str] = mapped_column(CODE_LIST)
    certifications: Mapped[str] = mapped_column(CODE_LIST)
    languages: Mapped[str] = mapped_column(CODE_LIST)
    services: Mapped[str] = mapped_column(CODE_LIST)
    primary_specialty: Mapped[str | None] = mapped_column(String(10))
    # Plans the practice is in network with on `plans_as_of`, in the same form. The
    # list holds until `plans_stale_on` (the next start or end date among its
    # participations, if any); outside that window search asks participations.
    plan_ids: Mapped[str] = mapped_column(CODE_LIST)
    plans_as_of: Mapped[date] = mapped_column(Date)
    plans_stale_on: Mapped[date | None] = mapped_column(Date)
