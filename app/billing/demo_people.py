"""Static ingredients of the demo merchant: its catalogue, its customers' names and addresses.

Everything random (dates, plans, ids, card numbers) is drawn in ``demo_data`` from a seeded RNG.
"""

from __future__ import annotations

from typing import NamedTuple


class Plan(NamedTuple):
    key: str
    name: str
    description: str
    monthly: int  # USD cents
    yearly: int
    unit_label: str | None


PLANS = (
    Plan(
        "starter",
        "Starter",
        "One project with managed hosting, daily backups and email support.",
        900,
        9000,
        None,
    ),
    Plan(
        "team",
        "Team",
        "Shared projects, roles and an audit log for growing teams, billed per seat.",
        2900,
        29000,
        "seat",
    ),
    Plan(
        "business",
        "Business",
        "Single sign-on, priority support and a 99.95% uptime commitment for larger companies.",
        9900,
        99000,
        None,
    ),
)


class Address(NamedTuple):
    line1: str
    city: str
    state: str | None
    postal_code: str
    country: str
    time_zone: str
    phone_prefix: str


US_ADDRESSES = (
    Address(
        "510 Townsend St", "San Francisco", "CA", "94103", "US", "America/Los_Angeles", "+1 415"
    ),
    Address("1100 Congress Ave", "Austin", "TX", "78701", "US", "America/Chicago", "+1 512"),
    Address("85 Jay St", "Brooklyn", "NY", "11201", "US", "America/New_York", "+1 718"),
    Address("1301 2nd Ave", "Seattle", "WA", "98101", "US", "America/Los_Angeles", "+1 206"),
    Address("1600 Wynkoop St", "Denver", "CO", "80202", "US", "America/Denver", "+1 303"),
    Address(
        "222 W Merchandise Mart Plz", "Chicago", "IL", "60654", "US", "America/Chicago", "+1 312"
    ),
    Address("920 SW 6th Ave", "Portland", "OR", "97204", "US", "America/Los_Angeles", "+1 503"),
    Address("1 Congress St", "Boston", "MA", "02114", "US", "America/New_York", "+1 617"),
    Address("3201 NE 183rd St", "Aventura", "FL", "33160", "US", "America/New_York", "+1 305"),
    Address("400 W Peachtree St NW", "Atlanta", "GA", "30308", "US", "America/New_York", "+1 404"),
)

ABROAD = {
    "DE": Address("Torstraße 109", "Berlin", None, "10119", "DE", "Europe/Berlin", "+49 30"),
    "FR": Address("12 Rue du Sentier", "Paris", None, "75002", "FR", "Europe/Paris", "+33 1"),
    "GB": Address("20 Bunhill Row", "London", None, "EC1Y 8UE", "GB", "Europe/London", "+44 20"),
    "IE": Address(
        "2 Grand Canal Quay", "Dublin", None, "D02 A342", "IE", "Europe/Dublin", "+353 1"
    ),
    "SE": Address(
        "Regeringsgatan 65", "Stockholm", None, "111 56", "SE", "Europe/Stockholm", "+46 8"
    ),
    "IT": Address("Via Tortona 31", "Milano", "MI", "20144", "IT", "Europe/Rome", "+39 02"),
    "CA": Address("151 Front St W", "Toronto", "ON", "M5J 2N1", "CA", "America/Toronto", "+1 416"),
}

# EU customers who gave a VAT number: (country, value).
EU_VAT = {"DE": "DE287654321", "FR": "FR40303265045"}

DOMAINS = ("example.com", "example.org", "example.net")


class Person(NamedTuple):
    name: str
    country: str  # "US" picks one of US_ADDRESSES


# Customers without a scripted story; demo_data gives each a plan, dates and a history.
PEOPLE = (
    Person("Olivia Bennett", "US"),
    Person("Marcus Chen", "US"),
    Person("Priya Raman", "US"),
    Person("Daniel Okafor", "US"),
    Person("Emily Carter", "US"),
    Person("Jamal Washington", "US"),
    Person("Sofia Alvarez", "US"),
    Person("Noah Fischer", "US"),
    Person("Hannah Kim", "US"),
    Person("Ethan Brooks", "US"),
    Person("Grace Liu", "US"),
    Person("Lucas Moreau", "CA"),
    Person("Ava Thompson", "US"),
    Person("Mateo Rossi", "IT"),
    Person("Chloe Martin", "US"),
    Person("Benjamin Adler", "US"),
    Person("Isabella Nguyen", "US"),
    Person("Ryan O'Connor", "IE"),
    Person("Zoe Patel", "GB"),
    Person("Henry Walsh", "US"),
    Person("Mia Johansson", "SE"),
    Person("Samuel Osei", "US"),
    Person("Leah Goldberg", "US"),
    Person("Julian Weber", "DE"),
    Person("Nora Haddad", "US"),
    Person("Théo Dubois", "FR"),
    Person("Caleb Turner", "US"),
    Person("Yuki Tanaka", "US"),
    Person("Elena Petrova", "US"),
    Person("Diego Santos", "US"),
    Person("Fatima Rahman", "US"),
    Person("Owen Gallagher", "US"),
    Person("Ruth Abernathy", "US"),
    Person("Kwame Mensah", "GB"),
)

# Stories for PEOPLE, shuffled with the seeded RNG (the counts are what matters).
SCENARIOS = (
    ("active",) * 23
    + ("past_due",) * 3
    + ("unpaid",)
    + ("canceled_recent",) * 2
    + ("canceled_old",) * 2
    + ("trialing",)
    + ("one_off",)
    + ("new",)
)

# One-off invoices (description, USD cents).
ONE_OFF = (
    ("Onboarding workshop (2 hours)", 15000),
    ("Data migration assistance", 25000),
    ("Extra storage, 500 GB (one-off)", 4900),
    ("Priority support pack", 9900),
    ("Consulting hour", 12000),
    ("Custom domain setup", 2500),
)
