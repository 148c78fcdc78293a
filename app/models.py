"""Every mapped model, imported once so the metadata and the mappers are complete."""

from app.auth.models import ApiKey
from app.imports.models import ImportJob, ImportRecordError
from app.locations.models import Location
from app.networks.models import Participation, Payer, Plan
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.search import projection  # noqa: F401  (keeps the search projection in step)
from app.search.models import SearchPractice
from app.therapists.models import Practice, Therapist, TherapistSpecialty

__all__ = [
    "ApiKey",
    "Certification",
    "Condition",
    "ImportJob",
    "ImportRecordError",
    "Language",
    "Location",
    "Participation",
    "Payer",
    "Plan",
    "Practice",
    "SearchPractice",
    "Service",
    "Specialty",
    "Therapist",
    "TherapistSpecialty",
]
