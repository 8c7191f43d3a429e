"""The merchant side's route handlers, for ``app.factory``."""

from app.merchant.branding import MerchantBrandingController
from app.merchant.controller import MerchantController
from app.merchant.settings import SettingsController

CONTROLLERS = [MerchantController, SettingsController, MerchantBrandingController]
