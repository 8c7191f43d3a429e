"""The merchant side's route handlers, for ``app.factory``."""

from app.merchant.activity import ActivityController
from app.merchant.branding import MerchantBrandingController
from app.merchant.configurations import ConfigurationsController
from app.merchant.controller import MerchantController
from app.merchant.customers import CustomersController
from app.merchant.email import EmailController
from app.merchant.features import FeaturesController
from app.merchant.settings import SettingsController
from app.merchant.stripe import MerchantStripeController

CONTROLLERS = [MerchantController, SettingsController, MerchantBrandingController]
CONTROLLERS += [EmailController, ActivityController]

CONTROLLERS += [MerchantStripeController]

CONTROLLERS += [FeaturesController, ConfigurationsController, CustomersController]
