"""The one Piccolo app; its migrations live in the top-level ``piccolo_migrations/``."""

from piccolo.conf.apps import AppConfig

from app.audit.tables import AuditEvent
from app.billing.stripe_tables import StripeEvent, StripeSyncCursor, StripeSyncRun
from app.billing.tables import (
    Coupon,
    Customer,
    IdempotencyRecord,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    PaymentMethod,
    Price,
    Product,
    PromotionCode,
    Subscription,
    SubscriptionItem,
    SubscriptionSchedule,
    TaxId,
)
from app.configuration.tables import BrandAsset, PortalConfiguration
from app.login.tables import LoginAttempt, WebSession
from app.mail.tables import MailSettings, OutboxMessage
from app.merchant.tables import MerchantAccount, MerchantSignInLimit
from app.portal.tables import PortalStamp
from app.settings import PROJECT_ROOT

APP_CONFIG = AppConfig(
    app_name="portico",
    migrations_folder_path=str(PROJECT_ROOT / "piccolo_migrations"),
    table_classes=[
        Customer,
        Product,
        Price,
        PaymentMethod,
        Subscription,
        SubscriptionItem,
        Invoice,
        InvoiceLine,
        TaxId,
        Coupon,
        PromotionCode,
        InvoiceItem,
        SubscriptionSchedule,
        IdempotencyRecord,
        StripeEvent,
        StripeSyncCursor,
        StripeSyncRun,
        BrandAsset,
        PortalConfiguration,
        LoginAttempt,
        WebSession,
        OutboxMessage,
        AuditEvent,
        MerchantAccount,
        MerchantSignInLimit,
        MailSettings,
        PortalStamp,
    ],
    migration_dependencies=[],
    commands=[],
)
