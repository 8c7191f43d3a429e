"""Compatibility only: ``app.merchant.activity`` (the merchant pages' module) still imports
``reason_labels`` from here. The subscription rules live in the modules named after them
(``eligibility``, ``plans``, ``cancellation``, ``pausing``, ``messages``, ``writes``); once the
merchant pages import ``cancellation.reason_labels``, delete this module."""

from app.portal.subscriptions.cancellation import reason_labels

__all__ = ["reason_labels"]
