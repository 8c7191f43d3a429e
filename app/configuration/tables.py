"""Portal configurations (one per login link) and the brand images they use."""

from piccolo.columns import JSON, Boolean, Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class BrandAsset(Table, tablename="brand_asset"):
    """A re-encoded image (logo or icon). ``id`` is the SHA-256 of ``data``: content-addressed, so
    its URL can be cached forever."""

    id = Varchar(length=64, primary_key=True)
    content_type = Varchar(length=32)
    data = Bytea()
    width = Integer()
    height = Integer()
    created = Timestamptz(default=TimestamptzNow())


class PortalConfiguration(Table, tablename="portal_configuration"):
    id = Varchar(length=64, primary_key=True)  # bpc_…
    name = Varchar(length=128, default="Default")
    is_default = Boolean(default=False)
    active = Boolean(default=True)
    # login_page.enabled and the token of login_page.url (/p/login/<token>)
    login_page_enabled = Boolean(default=True)
    login_page_token = Varchar(length=64, unique=True)
    # business_profile.*
    business_name = Varchar(length=128, default="")
    headline = Varchar(length=256, default="")
    privacy_policy_url = Varchar(length=2048, default="")
    terms_of_service_url = Varchar(length=2048, default="")
    default_return_url = Varchar(length=2048, default="")
    # branding
    brand_color = Varchar(length=7, default="#1f4ed8")
    accent_color = Varchar(length=7, default="#0f766e")
    font = Varchar(length=32, default="system")
    corner_style = Varchar(length=16, default="rounded")
    logo = ForeignKey(references=BrandAsset, null=True, default=None)
    icon = ForeignKey(references=BrandAsset, null=True, default=None)
    # features: app.configuration.features.Features encoded as JSON
    features = JSON(default={})
    notes = Text(default="")
    created = Timestamptz(default=TimestamptzNow())
    updated = Timestamptz(default=TimestamptzNow())
