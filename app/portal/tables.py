"""What the portal's page cache checks a cached page against (``app.portal.page_cache``)."""

from piccolo.columns import BigInt, Varchar
from piccolo.table import Table

# The scope every customer's pages depend on: products, prices, coupons, portal configurations,
# brand assets. A customer's own scope is their customer id.
EVERYONE = "*"


class PortalStamp(Table, tablename="portal_stamp"):
    """A change counter per scope (a customer id, or ``EVERYONE``), bumped by database triggers
    on every insert, update and delete of the rows a portal page shows (see the migration that
    creates them), whatever code or tool wrote them. A cached page is served only while the
    counters it was rendered under are unchanged."""

    scope = Varchar(length=64, primary_key=True)
    version = BigInt(default=0)
