"""A deterministic synthetic directory for demonstrations and load tests.

Every person, practice, address, phone number and network here is invented:
therapists carry `source = demo`, phone numbers use the fictional 555-01xx
range, and insurer and plan names are marked "(synthetic)". Locations sit at
real ZIP centroids so distance search behaves as it would on real data.

The same seed always produces the same rows in the same order (ids included):
all randomness comes from one `random.Random(seed)` and all dates are relative
to REFERENCE_DATE, never to the clock.
"""

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from app.fields import npi_check_digit
from app.geocoding import ZipPlace, all_zip_places
from app.locations.address import address_key
from app.locations.models import Accessibility, FacilityType, GeocodePrecision, Location
from app.networks.models import Participation, Payer, Plan, PlanType
from app.paths import DATA_DIR
from app.reference.models import Certification, Condition, Language, Service, Specialty
from app.search import projection
from app.therapists.models import (
    Gender,
    Practice,
    Source,
    Therapist,
    TherapistSpecialty,
    therapist_certifications,
    therapist_conditions,
    therapist_languages,
    therapist_services,
)
from app.therapists.names import name_key

# The day the synthetic directory describes: verification dates and effective
# dates are spread before it, and every row's timestamps are set to it.
REFERENCE_DATE = date(2026, 11, 1)
REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
VERIFIED_WITHIN_DAYS = 150  # some entries are past the 90-day re-verification window
_TIMESTAMPS = {"created_at": REFERENCE_TIME, "updated_at": REFERENCE_TIME}

LOCATIONS_PER_THERAPIST = 0.6
MIN_LOCATIONS_PER_STATE = 2
BATCH_SIZE = 1000

# Primary specialties (NUCC codes).
GENERAL = "225100000X"
CARDIOPULMONARY = "2251C2600X"
ELECTROPHYSIOLOGY = "2251E1300X"
GERIATRICS = "2251G0304X"
HAND = "2251H1200X"
NEUROLOGY = "2251N0400X"
ORTHOPEDIC = "2251X0800X"
PEDIATRICS = "2251P0200X"
SPORTS = "2251S0007X"
ASSISTANT = "225200000X"

NEUROLOGY_SHARE = 0.25
ASSISTANT_SHARE = 0.10
_OTHER_PRIMARY = {
    ORTHOPEDIC: 38, GENERAL: 24, GERIATRICS: 14, SPORTS: 11, PEDIATRICS: 7, HAND: 3,
    CARDIOPULMONARY: 3,
}  # fmt: skip
_SECONDARY = {
    NEUROLOGY: {GERIATRICS: 50, ORTHOPEDIC: 20, PEDIATRICS: 12, ELECTROPHYSIOLOGY: 10,
                CARDIOPULMONARY: 8},
    ORTHOPEDIC: {SPORTS: 50, HAND: 20, GERIATRICS: 20, NEUROLOGY: 10},
    GENERAL: {ORTHOPEDIC: 40, GERIATRICS: 30, NEUROLOGY: 20, SPORTS: 10},
    GERIATRICS: {NEUROLOGY: 50, ORTHOPEDIC: 40, CARDIOPULMONARY: 10},
    SPORTS: {ORTHOPEDIC: 80, PEDIATRICS: 20},
    PEDIATRICS: {NEUROLOGY: 60, SPORTS: 40},
    HAND: {ORTHOPEDIC: 100},
    CARDIOPULMONARY: {GERIATRICS: 60, NEUROLOGY: 40},
}  # fmt: skip
SECONDARY_SHARE = 0.2
_PT_CREDENTIALS = {("PT", "DPT"): 80, ("PT",): 15, ("PT", "MPT"): 5}
# Sites per therapist besides the first (mean ~0.4).
_EXTRA_PRACTICES = {0: 66, 1: 28, 2: 6}
_CERTIFICATIONS = {
    NEUROLOGY: {"NCS": 0.40, "GCS": 0.05},
    ORTHOPEDIC: {"OCS": 0.25, "SCS": 0.03},
    SPORTS: {"SCS": 0.30, "OCS": 0.10},
    GERIATRICS: {"GCS": 0.25, "NCS": 0.03},
    PEDIATRICS: {"PCS": 0.30},
    CARDIOPULMONARY: {"CCS": 0.35},
    HAND: {"OCS": 0.10},
    GENERAL: {"OCS": 0.05, "WCS": 0.03, "CWS": 0.02},
}

# Service probabilities per primary specialty (assistants follow a PT profile).
_SERVICES = {
    NEUROLOGY: {
        "balance-training": 0.95, "gait-training": 0.9, "strengthening": 0.85,
        "aerobic-conditioning": 0.6, "flexibility": 0.55, "home-exercise-program": 0.7,
        "vestibular-rehabilitation": 0.3, "sensory-reeducation": 0.3, "aquatic-therapy": 0.12,
        "orthotics-fitting": 0.2, "manual-therapy": 0.15,
    },
    GERIATRICS: {
        "balance-training": 0.9, "gait-training": 0.8, "strengthening": 0.9, "flexibility": 0.6,
        "aerobic-conditioning": 0.5, "home-exercise-program": 0.8, "aquatic-therapy": 0.1,
        "vestibular-rehabilitation": 0.15, "orthotics-fitting": 0.2, "manual-therapy": 0.3,
    },
    PEDIATRICS: {
        "gait-training": 0.6, "balance-training": 0.7, "strengthening": 0.8, "flexibility": 0.5,
        "aquatic-therapy": 0.15, "home-exercise-program": 0.6, "orthotics-fitting": 0.25,
    },
    CARDIOPULMONARY: {
        "aerobic-conditioning": 0.95, "strengthening": 0.8, "home-exercise-program": 0.7,
        "flexibility": 0.3, "balance-training": 0.3,
    },
    ORTHOPEDIC: {
        "strengthening": 0.95, "flexibility": 0.8, "manual-therapy": 0.75,
        "home-exercise-program": 0.8, "aerobic-conditioning": 0.35, "balance-training": 0.2,
        "gait-training": 0.15, "aquatic-therapy": 0.06, "orthotics-fitting": 0.15,
    },
}  # fmt: skip
_SERVICES[SPORTS] = _SERVICES[HAND] = _SERVICES[GENERAL] = _SERVICES[ORTHOPEDIC]

# Condition probabilities; neurology draws from whole categories instead.
# Neurology draws from whole vocabulary categories, the common conditions more often
# (a condition added to these categories later gets the default odds).
_NEURO_CATEGORIES = ("neuropathy", "neurological", "balance")
_NEURO_ODDS = {
    "balance-fall-risk": 0.85, "stroke": 0.7, "peripheral-neuropathy": 0.55,
    "diabetic-neuropathy": 0.45, "parkinsons-disease": 0.45, "multiple-sclerosis": 0.35,
    "vestibular-disorders": 0.35, "traumatic-brain-injury": 0.3, "spinal-cord-injury": 0.25,
    "chemotherapy-induced-neuropathy": 0.25, "guillain-barre-syndrome": 0.15,
    "hereditary-neuropathy": 0.15, "als": 0.15, "cerebral-palsy": 0.12,
}  # fmt: skip
_NEURO_DEFAULT_ODDS = 0.2
_NEURO_MIN_CONDITIONS = 3
_CONDITIONS = {
    GERIATRICS: {
        "balance-fall-risk": 0.85, "osteoarthritis": 0.7, "joint-replacement": 0.6,
        "peripheral-neuropathy": 0.3, "diabetic-neuropathy": 0.2, "parkinsons-disease": 0.2,
        "stroke": 0.2, "chronic-pain": 0.3,
    },
    PEDIATRICS: {
        "cerebral-palsy": 0.7, "sports-injury": 0.3, "traumatic-brain-injury": 0.15,
        "balance-fall-risk": 0.2,
    },
    CARDIOPULMONARY: {
        "balance-fall-risk": 0.2, "lymphedema": 0.15, "chronic-pain": 0.2,
        "diabetic-neuropathy": 0.15,
    },
    SPORTS: {"sports-injury": 1.0, "joint-replacement": 0.15, "low-back-pain": 0.4,
             "osteoarthritis": 0.2},
    HAND: {"osteoarthritis": 0.6, "sports-injury": 0.4, "chronic-pain": 0.3,
           "peripheral-neuropathy": 0.1},
    ORTHOPEDIC: {
        "low-back-pain": 0.8, "osteoarthritis": 0.6, "joint-replacement": 0.6,
        "sports-injury": 0.5, "chronic-pain": 0.4, "balance-fall-risk": 0.1,
    },
    GENERAL: {
        "low-back-pain": 0.7, "osteoarthritis": 0.5, "joint-replacement": 0.4,
        "sports-injury": 0.3, "chronic-pain": 0.4, "balance-fall-risk": 0.3,
        "peripheral-neuropathy": 0.15, "pelvic-floor": 0.1, "lymphedema": 0.08,
    },
}  # fmt: skip
# Treating a condition usually brings its specific service along.
_SERVICE_FOR_CONDITION = {
    "vestibular-disorders": ("vestibular-rehabilitation", 0.8),
    "peripheral-neuropathy": ("sensory-reeducation", 0.4),
    "diabetic-neuropathy": ("orthotics-fitting", 0.3),
    "balance-fall-risk": ("balance-training", 0.8),
}
_ASSISTANT_PROFILE = {ORTHOPEDIC: 40, GENERAL: 25, GERIATRICS: 20, NEUROLOGY: 15}

_FACILITY_TYPES = {
    FacilityType.PRIVATE_PRACTICE: 45, FacilityType.OUTPATIENT_CLINIC: 30,
    FacilityType.HOSPITAL_OUTPATIENT: 15, FacilityType.HOME_HEALTH: 4,
    FacilityType.SKILLED_NURSING: 4, FacilityType.AQUATIC_CENTER: 2,
}  # fmt: skip

_STREETS = (
    "Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lincoln", "Jefferson",
    "Park", "Lake", "Hill", "Church", "Market", "Highland", "Franklin", "Madison", "Walnut",
    "Chestnut", "Spring", "Ridge", "River", "Sunset", "Meadow", "Forest", "Mill", "Union",
    "Liberty", "Broad", "Prospect", "College", "Grove", "Valley", "Willow", "Birch", "Hickory",
    "Magnolia", "Dogwood", "Commerce", "Harbor", "Orchard", "Garfield", "Adams", "Monroe",
    "Jackson", "Fairview", "Woodland", "Riverside", "Lakeview", "Greenwood", "Kingston",
    "Cherry", "Sycamore", "Aspen", "Heritage", "Pleasant", "Central", "Summit", "Bay", "Canyon",
)  # fmt: skip
_STREET_SUFFIXES = ("St", "Ave", "Rd", "Blvd", "Dr", "Ln", "Way", "Pkwy", "Ct", "Pl")
_DIRECTIONS = ("N", "S", "E", "W")
_BRANDS = (
    "Riverbend", "Cedar Ridge", "Lakeside", "Keystone", "Evergreen", "Prairie Wind",
    "Harborview", "Stonebridge", "Maple Grove", "Willow Creek", "North Star", "Blue Heron",
    "Foothills", "Coastal Plains", "Heartland", "Pioneer Trail", "Granite Peak", "Redwood",
    "Oak Hollow", "Silver Lake", "Bright Path", "Steady Steps", "Kinetic", "Momentum",
    "Balance Point", "Cornerstone", "Tidewater", "Sagebrush", "Copper Canyon", "Juniper",
)  # fmt: skip


_T = TypeVar("_T")


def _weighted(rng: random.Random, weights: Mapping[_T, float]) -> _T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# Name groups: (first names female, first names male, last names, languages
# besides English with their probability, base share of therapists).
@dataclass(frozen=True, slots=True)
class _NameGroup:
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    languages: dict[str, float]
    share: float
    # Share of the group using a common US first name instead of a heritage one.
    us_first_name: float = 0.0
    female_last: tuple[str, ...] | None = None  # gendered surnames (Slavic)


_US_FEMALE = (
    "Jennifer", "Sarah", "Jessica", "Emily", "Ashley", "Amanda", "Megan", "Lauren", "Rachel",
    "Elizabeth", "Katherine", "Nicole", "Stephanie", "Rebecca", "Laura", "Michelle", "Kimberly",
    "Amy", "Heather", "Melissa", "Hannah", "Abigail", "Olivia", "Emma", "Madison", "Grace",
    "Allison", "Caitlin", "Erin", "Julia", "Anna", "Natalie", "Samantha", "Brittany", "Kelly",
    "Lisa", "Mary", "Susan", "Karen", "Patricia", "Linda", "Christina", "Danielle", "Courtney",
    "Molly", "Brianna", "Kayla", "Alexis", "Jasmine", "Taylor", "Morgan", "Shannon", "Andrea",
    "Victoria", "Imani", "Aaliyah", "Tiffany", "Monica", "Chelsea", "Leah",
)  # fmt: skip
_US_MALE = (
    "Michael", "David", "James", "John", "Robert", "William", "Christopher", "Matthew",
    "Daniel", "Joseph", "Andrew", "Ryan", "Joshua", "Brian", "Kevin", "Jason", "Justin", "Eric",
    "Steven", "Mark", "Thomas", "Timothy", "Jeffrey", "Scott", "Nathan", "Benjamin", "Zachary",
    "Tyler", "Brandon", "Kyle", "Adam", "Jonathan", "Patrick", "Sean", "Aaron", "Jacob",
    "Ethan", "Logan", "Marcus", "Derek", "Travis", "Gregory", "Paul", "Charles", "Darnell",
    "Andre", "Terrence", "Caleb",
)  # fmt: skip
_NAME_GROUPS = {
    "us": _NameGroup(
        female=_US_FEMALE,
        male=_US_MALE,
        last=(
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
            "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White",
            "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
            "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter",
            "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans",
            "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan",
            "Peterson", "Cooper", "Reed", "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox",
            "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "Hughes", "Price",
            "Sanders", "Myers", "Long", "Ross", "Foster", "Powell", "Jenkins", "Perry",
            "Russell", "Sullivan", "O'Brien", "Fitzgerald", "Schmidt", "Mueller", "Olson",
            "Larson", "Hansen", "Russo", "Romano", "Esposito", "Cohen", "Friedman", "Washington",
            "Coleman", "Simmons", "Banks", "Weber", "Becker", "Lindqvist", "McCarthy",
        ),
        languages={"es": 0.05, "fr": 0.01},
        share=0.665,
    ),
    "hispanic": _NameGroup(
        female=(
            "Maria", "Ana", "Sofia", "Isabella", "Gabriela", "Daniela", "Valeria", "Camila",
            "Lucia", "Carmen", "Rosa", "Alejandra", "Adriana", "Veronica", "Claudia", "Elena",
            "Marisol", "Yesenia", "Paola", "Mariana",
        ),
        male=(
            "José", "Luis", "Carlos", "Juan", "Miguel", "Jorge", "Alejandro", "Diego",
            "Javier", "Ricardo", "Fernando", "Eduardo", "Andrés", "Rafael", "Roberto", "Manuel",
            "Victor", "Mateo", "Gabriel", "Antonio",
        ),
        last=(
            "Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez",
            "Sanchez", "Ramirez", "Torres", "Flores", "Rivera", "Gomez", "Diaz", "Reyes",
            "Morales", "Cruz", "Ortiz", "Gutierrez", "Chavez", "Ramos", "Ruiz", "Mendoza",
            "Vargas", "Castillo", "Jiménez", "Moreno", "Romero", "Alvarez", "Herrera", "Medina",
            "Aguilar", "Vega", "Castro", "Muñoz", "Peña", "Colón", "Santiago",
        ),
        languages={"es": 0.75},
        share=0.13,
        us_first_name=0.25,
    ),
    "chinese": _NameGroup(
        female=("Mei", "Lin", "Jing", "Xiaoyan", "Hui", "Yan", "Ying", "Qing"),
        male=("Wei", "Jun", "Hao", "Ming", "Lei", "Jian", "Tao", "Yong"),
        last=("Chen", "Wang", "Li", "Zhang", "Liu", "Huang", "Lin", "Wu", "Zhou", "Yang",
              "Chang", "Lee", "Wong", "Chan", "Ho"),
        languages={"zh": 0.55},
        share=0.04,
        us_first_name=0.6,
    ),
    "vietnamese": _NameGroup(
        female=("Linh", "Thao", "Anh", "Huong", "Lan", "Trang", "Ngoc"),
        male=("Minh", "Tuan", "Duc", "Khoa", "Huy", "Long", "Bao"),
        last=("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do", "Ngo"),
        languages={"vi": 0.55},
        share=0.025,
        us_first_name=0.5,
    ),
    "korean": _NameGroup(
        female=("Ji-woo", "Seo-yeon", "Eun-ji", "Min-ji", "Soo-jin", "Hye-jin"),
        male=("Min-jun", "Jae-won", "Hyun-woo", "Sung-min", "Dong-hyun", "Ji-hoon"),
        last=("Kim", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Lim", "Han", "Shin"),
        languages={"ko": 0.5},
        share=0.02,
        us_first_name=0.6,
    ),
    "filipino": _NameGroup(
        female=("Maricel", "Rowena", "Jocelyn", "Marites", "Rhea", "Kristine"),
        male=("Rommel", "Jericho", "Ramil", "Arnel", "Jomar", "Renato"),
        last=("Santos", "Reyes", "Bautista", "Ocampo", "Dela Cruz", "Villanueva", "Aquino",
              "Mendoza", "Garcia", "Castillo", "Manalo", "Pascual"),
        languages={"tl": 0.45},
        share=0.03,
        us_first_name=0.6,
    ),
    "south_asian": _NameGroup(
        female=("Priya", "Anjali", "Neha", "Pooja", "Divya", "Kavya", "Shreya", "Meera"),
        male=("Raj", "Arjun", "Rahul", "Vikram", "Amit", "Sanjay", "Rohan", "Nikhil"),
        last=("Patel", "Shah", "Sharma", "Singh", "Kumar", "Gupta", "Desai", "Reddy", "Iyer",
              "Mehta", "Rao", "Joshi"),
        languages={"hi": 0.4},
        share=0.04,
        us_first_name=0.15,
    ),
    "russian": _NameGroup(
        female=("Olga", "Natalia", "Svetlana", "Irina", "Yelena", "Anastasia", "Tatiana"),
        male=("Dmitri", "Sergei", "Alexei", "Yuri", "Mikhail", "Andrei", "Nikolai"),
        last=("Ivanov", "Petrov", "Smirnov", "Volkov", "Kuznetsov", "Sokolov", "Popov",
              "Morozov"),
        female_last=("Ivanova", "Petrova", "Smirnova", "Volkova", "Kuznetsova", "Sokolova",
                     "Popova", "Morozova"),
        languages={"ru": 0.6},
        share=0.015,
        us_first_name=0.2,
    ),
    "polish": _NameGroup(
        female=("Agnieszka", "Katarzyna", "Magdalena", "Joanna", "Monika", "Ewa"),
        male=("Piotr", "Tomasz", "Krzysztof", "Marek", "Pawel", "Jakub"),
        last=("Nowak", "Kowalski", "Wisniewski", "Wojcik", "Kaminski", "Lewandowski",
              "Zielinski"),
        female_last=("Nowak", "Kowalska", "Wisniewska", "Wojcik", "Kaminska", "Lewandowska",
                     "Zielinska"),
        languages={"pl": 0.55},
        share=0.01,
        us_first_name=0.3,
    ),
    "arab": _NameGroup(
        female=("Layla", "Nour", "Yasmin", "Rania", "Lina", "Dalia", "Mariam"),
        male=("Omar", "Ahmed", "Khaled", "Youssef", "Karim", "Tariq", "Samir"),
        last=("Haddad", "Khalil", "Hassan", "Saleh", "Nasser", "Mansour", "Aziz", "Farah",
              "Habib"),
        languages={"ar": 0.55},
        share=0.015,
        us_first_name=0.2,
    ),
    "haitian": _NameGroup(
        female=("Marie", "Nadège", "Fabienne", "Guerline", "Mirlande", "Roseline"),
        male=("Jean", "Frantz", "Ronald", "Wesner", "Jacques", "Réginald"),
        last=("Jean-Baptiste", "Pierre", "Joseph", "Charles", "Dorvil", "Toussaint",
              "Célestin", "Louis", "Etienne"),
        languages={"ht": 0.65, "fr": 0.4},
        share=0.01,
        us_first_name=0.3,
    ),
}  # fmt: skip
# Where a group is more common than its national share.
_GROUP_BOOSTS: dict[str, dict[str, float]] = {
    "hispanic": {"CA": 3, "TX": 3, "NM": 3.5, "AZ": 2.5, "FL": 2.5, "NV": 2, "CO": 1.8,
                 "NY": 1.5, "NJ": 1.5, "IL": 1.5},
    "chinese": {"CA": 3, "NY": 2.5, "WA": 2, "MA": 2, "HI": 3, "NJ": 2},
    "vietnamese": {"CA": 3, "TX": 2, "WA": 2, "LA": 1.5},
    "korean": {"CA": 2.5, "NY": 2, "NJ": 2.5, "WA": 2, "VA": 1.5},
    "filipino": {"CA": 3, "HI": 8, "NV": 3, "WA": 1.5},
    "south_asian": {"NJ": 3, "CA": 2, "TX": 1.5, "NY": 1.5, "IL": 1.5},
    "russian": {"NY": 3, "NJ": 2, "WA": 1.5},
    "polish": {"IL": 4, "NY": 2, "NJ": 2, "PA": 1.5, "MI": 1.5},
    "arab": {"MI": 4, "NY": 1.5, "NJ": 1.5, "CA": 1.5},
    "haitian": {"FL": 5, "NY": 3, "MA": 3},
}  # fmt: skip
_PUERTO_RICO_HISPANIC_SHARE = 0.92


@dataclass(frozen=True, slots=True)
class DemoSummary:
    therapists: int
    practices: int
    locations: int
    payers: int
    plans: int
    participations: int

    def __str__(self) -> str:
        return (
            f"{self.therapists} therapists, {self.practices} practices, "
            f"{self.locations} locations, {self.payers} payers, {self.plans} plans, "
            f"{self.participations} network participations"
        )


@dataclass(frozen=True, slots=True)
class _PlanSpec:
    payer: str
    name: str
    plan_type: PlanType
    share: float  # of eligible practices
    states: tuple[str, ...] | None = None  # None: national
    hios_plan_id: str | None = None
    tiered: bool = True  # network_tier is filled in (preferred / standard)
    condition: str | None = None  # only practices also in this plan's network


MEDICARE = "Medicare (synthetic demo network)"
_PAYERS = {
    MEDICARE: (None, None),
    "Northwind Health (synthetic)": ("https://northwind-health.example/", "8005550142"),
    "Illinois Medicaid (synthetic)": (None, "8005550117"),
    "Texas Medicaid (synthetic)": (None, "8005550163"),
    "Tallgrass Health Cooperative (synthetic)": ("https://tallgrass-health.example/", "8885550129"),
}
_PLANS = (
    _PlanSpec(MEDICARE, "Medicare Part B", PlanType.MEDICARE_PART_B, 0.85, tiered=False),
    _PlanSpec(
        "Northwind Health (synthetic)",
        "Northwind Medicare Advantage PPO (synthetic)",
        PlanType.MEDICARE_ADVANTAGE,
        0.35,
        condition="Medicare Part B",
    ),
    _PlanSpec(
        "Northwind Health (synthetic)",
        "Northwind National Choice PPO (synthetic)",
        PlanType.COMMERCIAL,
        0.55,
    ),
    _PlanSpec(
        "Illinois Medicaid (synthetic)",
        "Illinois Medicaid (synthetic)",
        PlanType.MEDICAID,
        0.5,
        states=("IL",),
        tiered=False,
    ),
    _PlanSpec(
        "Texas Medicaid (synthetic)",
        "Texas Medicaid (synthetic)",
        PlanType.MEDICAID,
        0.5,
        states=("TX",),
        tiered=False,
    ),
    *(
        _PlanSpec(
            "Tallgrass Health Cooperative (synthetic)",
            f"Tallgrass Silver Select EPO {state} (synthetic)",
            PlanType.MARKETPLACE,
            0.25,
            states=(state,),
            hios_plan_id=hios,
        )
        for state, hios in (
            ("IL", "38344IL0010001"),
            ("TX", "29418TX0020003"),
            ("FL", "16842FL0030002"),
            ("NC", "54107NC0010005"),
        )
    ),
)
# A practice follows its location's contract with a payer, with a few exceptions
# (a therapist credentialed separately, or not yet).
_FOLLOWS_LOCATION = 0.93
_TIERS = {"preferred": 30, "standard": 55, None: 15}
_PLAN_INDEX = {spec.name: index for index, spec in enumerate(_PLANS)}
# Draft attribute -> (link table, its vocabulary column).
_LINKS: dict[str, tuple[Table, str]] = {
    "conditions": (therapist_conditions, "condition_slug"),
    "services": (therapist_services, "service_slug"),
    "certifications": (therapist_certifications, "certification_code"),
    "languages": (therapist_languages, "language_code"),
}


@cache
def _state_populations() -> dict[str, int]:
    """States, DC and Puerto Rico with their 2020 census population."""
    with (DATA_DIR / "us_states.csv").open(encoding="utf-8", newline="") as handle:
        return {
            row["code"]: int(row["population_2020"])
            for row in csv.DictReader(handle)
            if row["kind"] in ("state", "district") or row["code"] == "PR"
        }


@cache
def _standard_zips_by_state() -> dict[str, tuple[tuple[ZipPlace, tuple[str, ...]], ...]]:
    """Each state's active delivery-area ZIPs (no PO box or single-firm ZIPs), sorted.

    Each comes with its telephone area codes, for the synthetic phone numbers.
    """
    states = _state_populations()
    standard: dict[str, list[tuple[ZipPlace, tuple[str, ...]]]] = {state: [] for state in states}
    other: dict[str, list[tuple[ZipPlace, tuple[str, ...]]]] = {state: [] for state in states}
    for place in sorted(all_zip_places(), key=lambda place: place.zip):
        if place.state not in states:
            continue
        item = (place, place.area_codes)
        if place.standard:
            standard[place.state].append(item)
        else:
            other[place.state].append(item)
    return {state: tuple(standard[state] or other[state]) for state in states}


def _valid_area_code(code: str) -> bool:
    return (
        len(code) == 3
        and code.isdigit()
        and code[0] not in "01"
        and code[1] != "9"
        and code[1:] != "11"
    )


def _phone(rng: random.Random, area_code: str) -> str:
    """A fictional number: 555-0100 to 555-0199 are reserved for fiction."""
    while not _valid_area_code(area_code):
        area_code = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
    return f"{area_code}55501{rng.randint(0, 99):02d}"


def _allocate_states(rng: random.Random, count: int, populations: dict[str, int]) -> list[str]:
    """`count` state codes: a couple per state when there is room, the rest by population."""
    states = list(populations)
    minimum = MIN_LOCATIONS_PER_STATE if count >= 4 * MIN_LOCATIONS_PER_STATE * len(states) else 0
    if minimum == 0 and count >= 2 * len(states):
        minimum = 1
    allocated = [state for state in states for _ in range(minimum)]
    allocated += rng.choices(
        states, weights=[populations[s] for s in states], k=count - len(allocated)
    )
    rng.shuffle(allocated)
    return allocated


def _location_name(
    rng: random.Random, facility: FacilityType, city: str, surnames: Sequence[str]
) -> str:
    brand = rng.choice(_BRANDS)
    match facility:
        case FacilityType.PRIVATE_PRACTICE:
            return rng.choice(
                (
                    f"{rng.choice(surnames)} Physical Therapy",
                    f"{brand} Physical Therapy",
                    f"{brand} Sports & Spine",
                    f"{brand} Movement & Balance",
                    f"{brand} Neuro & Balance Therapy",
                )
            )
        case FacilityType.OUTPATIENT_CLINIC:
            return rng.choice(
                (
                    f"{brand} Rehab - {city}",
                    f"{brand} Physical Therapy & Rehabilitation",
                    f"{brand} Physical Therapy Center",
                )
            )
        case FacilityType.HOSPITAL_OUTPATIENT:
            return rng.choice(
                (
                    f"{brand} Community Hospital Outpatient Rehabilitation",
                    f"{brand} Medical Center Outpatient Therapy",
                    f"{brand} Regional Health Rehabilitation Services",
                )
            )
        case FacilityType.HOME_HEALTH:
            return f"{brand} Home Health"
        case FacilityType.SKILLED_NURSING:
            return f"{brand} Rehabilitation & Nursing Center"
        case FacilityType.AQUATIC_CENTER:
            return f"{brand} Aquatic Therapy Center"
    return f"{brand} Physical Therapy"


def _accessibility(rng: random.Random, facility: FacilityType) -> list[str]:
    if facility in (FacilityType.HOSPITAL_OUTPATIENT, FacilityType.SKILLED_NURSING):
        odds = {
            Accessibility.WHEELCHAIR_ACCESSIBLE: 0.95, Accessibility.ACCESSIBLE_PARKING: 0.9,
            Accessibility.ELEVATOR: 0.7, Accessibility.ACCESSIBLE_RESTROOM: 0.9,
            Accessibility.PUBLIC_TRANSIT_NEARBY: 0.4, Accessibility.ASL_INTERPRETER: 0.3,
        }  # fmt: skip
    elif facility is FacilityType.HOME_HEALTH:
        odds = {Accessibility.ASL_INTERPRETER: 0.1}
    elif rng.random() < 0.4:  # many listings say nothing about access
        return []
    else:
        odds = {
            Accessibility.WHEELCHAIR_ACCESSIBLE: 0.85, Accessibility.ACCESSIBLE_PARKING: 0.7,
            Accessibility.ELEVATOR: 0.25, Accessibility.ACCESSIBLE_RESTROOM: 0.7,
            Accessibility.PUBLIC_TRANSIT_NEARBY: 0.3, Accessibility.ASL_INTERPRETER: 0.05,
        }  # fmt: skip
    return [feature.value for feature, chance in odds.items() if rng.random() < chance]


def _build_locations(rng: random.Random, count: int) -> list[dict[str, Any]]:
    populations = _state_populations()
    zips = _standard_zips_by_state()
    surnames = _NAME_GROUPS["us"].last
    keys: set[str] = set()
    locations = []
    for state in _allocate_states(rng, count, populations):
        place, area_codes = rng.choice(zips[state])
        area_code = next((code for code in area_codes if _valid_area_code(code)), "")
        facility = _weighted(rng, _FACILITY_TYPES)
        while True:
            street = f"{rng.choice(_STREETS)} {rng.choice(_STREET_SUFFIXES)}"
            if rng.random() < 0.15:
                street = f"{rng.choice(_DIRECTIONS)} {street}"
            line1 = f"{rng.randint(100, 9899)} {street}"
            line2 = f"Suite {rng.randint(1, 45) * 10}" if rng.random() < 0.35 else None
            key = address_key(
                line1=line1, line2=line2, city=place.city, state=place.state, zip_code=place.zip
            )
            if key not in keys:
                keys.add(key)
                break
        locations.append(
            {
                "address_key": key,
                "name": _location_name(rng, facility, place.city, surnames),
                "address_line1": line1,
                "address_line2": line2,
                "city": place.city,
                "state": place.state,
                "zip": place.zip,
                "latitude": place.latitude,
                "longitude": place.longitude,
                "geocode_precision": GeocodePrecision.ZIP_CENTROID,
                "phone": _phone(rng, area_code),
                "fax": _phone(rng, area_code) if rng.random() < 0.6 else None,
                "facility_type": facility,
                "accessibility": _accessibility(rng, facility),
                **_TIMESTAMPS,
            }
        )
    return locations


def _location_networks(
    rng: random.Random, locations: Sequence[dict[str, Any]]
) -> list[dict[int, str | None]]:
    """Per location: the plans (by index in _PLANS) it contracts with, and its tier."""
    networks: list[dict[int, str | None]] = []
    for location in locations:
        network: dict[int, str | None] = {}
        for index, spec in enumerate(_PLANS):
            if spec.states is not None and location["state"] not in spec.states:
                continue
            share = spec.share
            if spec.condition is not None:
                condition = _PLAN_INDEX[spec.condition]
                if condition not in network:
                    continue
                share /= _PLANS[condition].share
            # Practices mostly follow their location; aim the location share so
            # the practice share comes out near `spec.share`.
            share = (share - (1 - _FOLLOWS_LOCATION)) / (2 * _FOLLOWS_LOCATION - 1)
            if rng.random() < share:
                network[index] = _weighted(rng, _TIERS) if spec.tiered else None
        networks.append(network)
    return networks


def _npi(rng: random.Random, used: set[str]) -> str:
    while True:
        first_nine = f"{rng.choice('12')}{rng.randint(0, 99_999_999):08d}"
        npi = f"{first_nine}{npi_check_digit(first_nine)}"
        if npi not in used:
            used.add(npi)
            return npi


def _name_group(rng: random.Random, state: str) -> _NameGroup:
    if state == "PR":
        if rng.random() < _PUERTO_RICO_HISPANIC_SHARE:
            return _NAME_GROUPS["hispanic"]
        return _NAME_GROUPS["us"]
    weights = {
        key: group.share * _GROUP_BOOSTS.get(key, {}).get(state, 1.0)
        for key, group in _NAME_GROUPS.items()
    }
    return _NAME_GROUPS[_weighted(rng, weights)]


def _pick(rng: random.Random, odds: Mapping[str, float]) -> list[str]:
    return [slug for slug, chance in odds.items() if rng.random() < chance]


def _neuro_conditions(session: Session) -> list[str]:
    """The neurology condition pool; fails early when the vocabularies are not loaded."""
    conditions: dict[str, str] = {
        slug: category
        for slug, category in session.execute(
            select(Condition.slug, Condition.category).order_by(Condition.slug)
        )
    }
    present = {
        "specialties": set(session.scalars(select(Specialty.code))),
        "conditions": set(conditions),
        "services": set(session.scalars(select(Service.slug))),
        "certifications": set(session.scalars(select(Certification.code))),
        "languages": set(session.scalars(select(Language.code))),
    }
    needed = {
        "specialties": {GENERAL, NEUROLOGY, ASSISTANT, *_OTHER_PRIMARY}
        | {code for options in _SECONDARY.values() for code in options},
        "conditions": {slug for odds in _CONDITIONS.values() for slug in odds},
        "services": {slug for odds in _SERVICES.values() for slug in odds}
        | {service for service, _ in _SERVICE_FOR_CONDITION.values()}
        | {"aquatic-therapy"},
        "certifications": {code for odds in _CERTIFICATIONS.values() for code in odds},
        "languages": {"en", "es"}
        | {code for group in _NAME_GROUPS.values() for code in group.languages},
    }
    missing = {name: sorted(needed[name] - present[name]) for name in needed}
    missing = {name: codes for name, codes in missing.items() if codes}
    pool = [slug for slug, category in conditions.items() if category in _NEURO_CATEGORIES]
    if missing or len(pool) < _NEURO_MIN_CONDITIONS:
        raise RuntimeError(
            f"reference vocabularies are not loaded (missing: {missing or 'neurology conditions'});"
            " run sync_reference_data before loading demo data"
        )
    return pool


@dataclass(slots=True)
class _PracticeDraft:
    row: dict[str, Any]
    participations: list[dict[str, Any]]


@dataclass(slots=True)
class _TherapistDraft:
    row: dict[str, Any]
    specialties: list[tuple[str, bool]]
    conditions: list[str]
    services: list[str]
    certifications: list[str]
    languages: list[str]
    practices: list[_PracticeDraft] = field(default_factory=list)


def _draft_therapist(
    rng: random.Random,
    neuro_pool: Sequence[str],
    npi: str,
    state: str,
    facilities: Sequence[FacilityType],
) -> _TherapistDraft:
    group = _name_group(rng, state)
    draw = rng.random()
    gender = Gender.FEMALE if draw < 0.67 else Gender.MALE if draw < 0.985 else None
    female = gender is Gender.FEMALE or (gender is None and rng.random() < 0.5)
    heritage_first = group.female if female else group.male
    us_first = _US_FEMALE if female else _US_MALE
    first = rng.choice(us_first if rng.random() < group.us_first_name else heritage_first)
    last = rng.choice(group.female_last if female and group.female_last else group.last)
    middle = rng.choice("ABCDEFGHJKLMNPRSTW") if rng.random() < 0.25 else None
    suffix = "Jr." if not female and rng.random() < 0.02 else None

    draw = rng.random()
    if draw < NEUROLOGY_SHARE:
        primary = profile = NEUROLOGY
    elif draw < NEUROLOGY_SHARE + ASSISTANT_SHARE:
        primary, profile = ASSISTANT, _weighted(rng, _ASSISTANT_PROFILE)
    else:
        primary = profile = _weighted(rng, _OTHER_PRIMARY)
    specialties = [(primary, True)]
    certifications: list[str] = []
    if primary == ASSISTANT:
        credentials: tuple[str, ...] = ("PTA",)
    else:
        credentials = _weighted(rng, _PT_CREDENTIALS)
        if rng.random() < SECONDARY_SHARE:
            specialties.append((_weighted(rng, _SECONDARY[primary]), False))
        certifications = _pick(rng, _CERTIFICATIONS[primary])

    if profile == NEUROLOGY:
        chosen = set(
            _pick(rng, {slug: _NEURO_ODDS.get(slug, _NEURO_DEFAULT_ODDS) for slug in neuro_pool})
        )
        remaining = [slug for slug in neuro_pool if slug not in chosen]
        shortfall = max(0, _NEURO_MIN_CONDITIONS - len(chosen))
        chosen.update(rng.sample(remaining, min(shortfall, len(remaining))))
        conditions = [slug for slug in neuro_pool if slug in chosen]
    else:
        conditions = _pick(rng, _CONDITIONS[profile])
    services = _pick(rng, _SERVICES[profile])
    for condition, (service, chance) in _SERVICE_FOR_CONDITION.items():
        if condition in conditions and service not in services and rng.random() < chance:
            services.append(service)
    if FacilityType.AQUATIC_CENTER in facilities and "aquatic-therapy" not in services:
        services.append("aquatic-therapy")
    if not services:
        services.append("strengthening")
    languages = ["en", *_pick(rng, group.languages)]
    if state == "PR" and "es" not in languages:
        languages.append("es")

    row = {
        "npi": npi,
        "first_name": first,
        "middle_name": middle,
        "last_name": last,
        "first_name_key": name_key(first),
        "last_name_key": name_key(last),
        "name_suffix": suffix,
        "credentials": list(credentials),
        "gender": gender,
        "source": Source.DEMO,
        **_TIMESTAMPS,
    }
    return _TherapistDraft(row, specialties, conditions, services, certifications, languages)


def _practice_locations(
    rng: random.Random, therapists: int, locations: Sequence[dict[str, Any]]
) -> list[list[int]]:
    """Location indexes per therapist: every location gets someone; ~1.4 per therapist."""
    count = len(locations)
    primaries = list(range(count))[:therapists]
    primaries += [rng.randrange(count) for _ in range(therapists - len(primaries))]
    rng.shuffle(primaries)
    by_state: dict[str, list[int]] = {}
    for index, location in enumerate(locations):
        by_state.setdefault(location["state"], []).append(index)
    assignments = []
    for primary in primaries:
        chosen = [primary]
        nearby = by_state[locations[primary]["state"]]
        for _ in range(_weighted(rng, _EXTRA_PRACTICES)):
            # A second site is usually in the same state.
            pool: Sequence[int] = nearby if len(nearby) > len(chosen) else range(count)
            if len(pool) <= len(chosen):
                break
            while (candidate := rng.choice(pool)) in chosen:
                pass
            chosen.append(candidate)
        assignments.append(chosen)
    return assignments


def _draft_practice(
    rng: random.Random,
    location: dict[str, Any],
    network: dict[int, str | None],
    plan_ids: Sequence[int],
    *,
    pediatric: bool,
) -> _PracticeDraft:
    home_health = location["facility_type"] is FacilityType.HOME_HEALTH
    row = {
        "location_id": location["id"],
        "accepting_new_patients": rng.random() < 0.75,
        "telehealth": rng.random() < (0.1 if home_health else 0.25),
        "home_visits": rng.random() < (0.9 if home_health else 0.07),
        **_TIMESTAMPS,
    }
    joined: list[int] = []
    participations = []
    for index, spec in enumerate(_PLANS):
        if spec.states is not None and location["state"] not in spec.states:
            continue
        in_location = index in network
        if in_location != (rng.random() < _FOLLOWS_LOCATION):
            continue
        if spec.condition is not None and _PLAN_INDEX[spec.condition] not in joined:
            continue
        if pediatric and spec.plan_type is PlanType.MEDICARE_PART_B and rng.random() < 0.5:
            continue  # fewer paediatric therapists bill Medicare
        tier = network.get(index) if in_location else None
        if spec.tiered and not in_location:
            tier = _weighted(rng, _TIERS)
        if spec.plan_type is PlanType.MARKETPLACE:
            effective_from = date(REFERENCE_DATE.year, 1, 1)  # the plan year
        else:
            effective_from = REFERENCE_DATE - timedelta(days=rng.randint(30, 8 * 365))
        effective_to = None
        if rng.random() < 0.04:  # leaving the network soon
            effective_to = REFERENCE_DATE + timedelta(days=rng.randint(30, 120))
        verified_at = REFERENCE_TIME - timedelta(
            seconds=rng.randint(0, VERIFIED_WITHIN_DAYS * 86_400)
        )
        joined.append(index)
        participations.append(
            {
                "plan_id": plan_ids[index],
                "network_tier": tier,
                "effective_from": effective_from,
                "effective_to": effective_to,
                "verified_at": verified_at,
                **_TIMESTAMPS,
            }
        )
    return _PracticeDraft(row, participations)


def _insert(
    session: Session, model: type[Any], rows: Sequence[dict[str, Any]], *key: str
) -> list[int]:
    """ORM bulk INSERT in batches; returns the new ids in the order of `rows`.

    Ids are matched to rows by a unique `key` rather than by RETURNING order,
    which keeps multi-row VALUES batching on every backend.
    """
    # render_nulls keeps None as NULL rather than splitting batches by which keys are None.
    statement = (
        insert(model)
        .returning(model.id, *(getattr(model, name) for name in key))
        .execution_options(render_nulls=True)
    )
    ids: dict[tuple[Any, ...], int] = {}
    for start in range(0, len(rows), BATCH_SIZE):
        for new_id, *values in session.execute(statement, list(rows[start : start + BATCH_SIZE])):
            ids[tuple(values)] = new_id
    return [ids[tuple(row[name] for name in key)] for row in rows]


def _insert_rows(session: Session, target: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk INSERT without RETURNING (rows whose keys are all known)."""
    for start in range(0, len(rows), BATCH_SIZE * 5):
        session.execute(
            insert(target).execution_options(render_nulls=True),
            list(rows[start : start + BATCH_SIZE * 5]),
        )


def load_demo(session: Session, *, therapists: int = 5000, seed: int = 20261127) -> DemoSummary:
    """Adds a synthetic directory to an empty database (flushes; the caller commits).

    The reference vocabularies must already be loaded (sync_reference_data).
    """
    if therapists < 1:
        raise ValueError("therapists must be at least 1")
    rng = random.Random(seed)
    neuro_pool = _neuro_conditions(session)

    locations = _build_locations(rng, max(1, round(therapists * LOCATIONS_PER_THERAPIST)))
    location_ids = _insert(session, Location, locations, "address_key")
    for location, location_id in zip(locations, location_ids, strict=True):
        location["id"] = location_id

    payers = [
        {"name": name, "website": website, "phone": phone, **_TIMESTAMPS}
        for name, (website, phone) in _PAYERS.items()
    ]
    payer_ids = dict(zip(_PAYERS, _insert(session, Payer, payers, "name"), strict=True))
    plans = [
        {
            "payer_id": payer_ids[spec.payer],
            "name": spec.name,
            "plan_type": spec.plan_type,
            "hios_plan_id": spec.hios_plan_id,
            **_TIMESTAMPS,
        }
        for spec in _PLANS
    ]
    plan_ids = _insert(session, Plan, plans, "payer_id", "name")
    networks = _location_networks(rng, locations)

    used_npis: set[str] = set()
    drafts = []
    for location_indexes in _practice_locations(rng, therapists, locations):
        sites = [locations[index] for index in location_indexes]
        draft = _draft_therapist(
            rng,
            neuro_pool,
            _npi(rng, used_npis),
            sites[0]["state"],
            [site["facility_type"] for site in sites],
        )
        pediatric = draft.specialties[0][0] == PEDIATRICS
        draft.practices = [
            _draft_practice(rng, locations[index], networks[index], plan_ids, pediatric=pediatric)
            for index in location_indexes
        ]
        drafts.append(draft)

    therapist_ids = _insert(session, Therapist, [draft.row for draft in drafts], "npi")
    specialties = []
    links: dict[Table, list[dict[str, Any]]] = {table: [] for table, _ in _LINKS.values()}
    practices = []
    for therapist_id, draft in zip(therapist_ids, drafts, strict=True):
        specialties += [
            {"therapist_id": therapist_id, "specialty_code": code, "is_primary": primary}
            for code, primary in draft.specialties
        ]
        for attribute, (table, column) in _LINKS.items():
            links[table] += [
                {"therapist_id": therapist_id, column: value} for value in getattr(draft, attribute)
            ]
        for practice in draft.practices:
            practice.row["therapist_id"] = therapist_id
            practices.append(practice)
    _insert_rows(session, TherapistSpecialty, specialties)
    for table, rows in links.items():
        _insert_rows(session, table, rows)

    practice_ids = _insert(
        session, Practice, [practice.row for practice in practices], "therapist_id", "location_id"
    )
    participations = [
        {"practice_id": practice_id, **participation}
        for practice_id, practice in zip(practice_ids, practices, strict=True)
        for participation in practice.participations
    ]
    _insert_rows(session, Participation, participations)
    session.flush()
    projection.refresh(session, therapist_ids)  # bulk inserts bypass the ORM's hooks

    return DemoSummary(
        therapists=len(therapist_ids),
        practices=len(practice_ids),
        locations=len(locations),
        payers=len(payer_ids),
        plans=len(plan_ids),
        participations=len(participations),
    )
