"""The security rules (SECURITY.md, design.md §4) and the tests that check them: one place to look.

Each rule names the test functions that check it, wherever they live (a rule is tested once, next
to the code it is about; this file only points there). The test below fails if a named test is
renamed or removed, so the map cannot silently go stale.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

RULES: dict[str, list[str]] = {
    # --- passcodes
    "passcode: 6 digits from secrets, uniform, random never used": [
        "tests/login/test_passcodes.py::test_codes_are_six_digits_from_secrets",
        "tests/security/test_randomness.py::test_passcodes_are_uniform_in_every_position",
        "tests/security/test_randomness.py::test_no_app_module_imports_random",
        "tests/security/test_randomness.py::test_secret_values_do_not_come_from_random",
        "tests/security/test_randomness.py::test_a_guesser_s_chance_is_negligible",
    ],
    "passcode: lifetime 10 minutes, exact at the boundary": [
        "tests/login/test_passcodes.py::test_a_code_lives_exactly_ten_minutes",
        "tests/login/test_passcodes.py::test_is_deliverable",
    ],
    "passcode: single use, also under 20 concurrent correct submissions": [
        "tests/login/test_passcodes.py::test_a_code_works_once",
        "tests/login/test_passcodes.py::test_twenty_simultaneous_correct_codes_sign_in_once",
        "tests/security/test_sign_in.py::"
        "test_twenty_simultaneous_correct_submissions_make_one_session",
    ],
    "passcode: bound to its attempt, email and portal; one live code per portal and email": [
        "tests/login/test_passcodes.py::test_the_hash_binds_the_attempt",
        "tests/login/test_passcodes.py::test_one_live_code_per_portal_and_email",
        "tests/security/test_sign_in.py::test_a_code_opens_only_its_own_attempt_and_email",
    ],
    "passcode: 5 wrong guesses burn it; 20 failures a day lock the email": [
        "tests/login/test_passcodes.py::test_five_wrong_guesses_burn_the_code",
        "tests/login/test_passcodes.py::test_twenty_failures_a_day_lock_the_email",
        "tests/login/test_passcode_concurrency.py::"
        "test_simultaneous_wrong_guesses_count_to_five_and_burn_the_code",
        "tests/login/test_controller.py::test_a_burned_code_offers_a_new_one",
        "tests/login/test_controller.py::test_a_locked_email",
    ],
    "sending: 60 s cooldown, 5 an hour, per-address 30 requests / 60 verifications a minute": [
        "tests/login/test_passcodes.py::test_resend_cooldown",
        "tests/login/test_passcodes.py::test_at_most_five_sends_an_hour",
        "tests/login/test_passcodes.py::test_the_cooldown_is_per_portal_and_the_limits_span_portals",
        "tests/web/test_throttle.py::test_the_limits_are_generous",
        "tests/web/test_throttle.py::test_too_many_requests_from_one_address",
        "tests/security/test_proxies.py::test_a_trusted_proxy_sets_the_client_address",
        "tests/web/test_redis_throttle.py::test_every_instance_shares_one_count",
        "tests/web/test_redis_throttle.py::test_concurrent_hits_never_overshoot",
        "tests/web/test_redis_throttle.py::test_two_app_instances_share_the_login_throttle",
        "tests/scale/test_two_instances.py::test_the_per_email_limits_hold_across_both_instances",
        "tests/scale/test_two_instances.py::"
        "test_simultaneous_requests_on_both_instances_send_one_code",
        "tests/login/test_passcode_concurrency.py::"
        "test_simultaneous_requests_for_one_email_send_one_code",
    ],
    "no plaintext code in the database or the logs": [
        "tests/login/test_passcodes.py::test_only_the_hmac_is_stored",
        "tests/login/test_passcodes.py::test_code_hash_is_hmac_sha256_of_attempt_and_code",
        "tests/test_logging.py::test_a_whole_sign_in_logs_no_secret_caplog",
        "tests/test_logging.py::test_a_whole_sign_in_logs_no_secret_json",
        "tests/login/test_delivery.py::test_the_code_is_never_logged",
    ],
    "enumeration: same status, headers, body and rows; nothing sent; same timing": [
        "tests/login/test_controller.py::test_known_and_unknown_emails_look_the_same",
        "tests/login/test_passcodes.py::test_an_unknown_email_gets_the_same_outcome_and_rows",
        "tests/login/test_delivery.py::test_nothing_is_sent_to_an_address_that_is_no_customer",
        "tests/security/test_sign_in.py::"
        "test_the_code_step_looks_the_same_for_known_and_unknown_emails",
        "tests/security/test_sign_in.py::test_requesting_a_code_takes_as_long_for_unknown_emails",
        "tests/merchant/test_sign_in.py::test_unknown_email_gets_the_same_answer_and_the_same_work",
    ],
    # --- sessions
    "session: cookie flags, ids of 256 bits stored as SHA-256": [
        "tests/login/test_controller.py::test_the_right_code_signs_in",
        "tests/login/test_controller.py::test_over_https_the_cookies_are_secure_and_host_only",
        "tests/login/test_sessions.py::test_tokens_are_long_random_and_stored_only_as_sha256",
        "tests/merchant/test_sign_in.py::"
        "test_merchant_cookie_is_host_prefixed_and_secure_over_https",
    ],
    "session: a new id at sign-in, a planted one never adopted": [
        "tests/login/test_controller.py::test_the_session_id_changes_at_sign_in",
        "tests/login/test_sessions.py::test_starting_a_session_replaces_the_old_one",
        "tests/merchant/test_sign_in.py::test_the_session_id_changes_at_sign_in",
        "tests/security/test_sign_in.py::test_a_planted_session_cookie_is_never_adopted",
    ],
    "session: idle 30 minutes, absolute 12 hours (merchants: 15 minutes, 12 hours)": [
        "tests/login/test_sessions.py::test_the_policy",
        "tests/login/test_sessions.py::test_idle_timeout",
        "tests/login/test_sessions.py::test_absolute_timeout",
        "tests/portal/test_controller.py::test_an_idle_session_ends_with_a_message",
        "tests/portal/test_controller.py::test_a_session_ends_after_twelve_hours_however_busy",
        "tests/merchant/test_sign_in.py::test_idle_sessions_end_after_fifteen_minutes",
        "tests/merchant/test_sign_in.py::test_sessions_end_twelve_hours_after_sign_in",
    ],
    "session: sign-out deletes it everywhere": [
        "tests/login/test_sessions.py::test_end_revokes",
        "tests/portal/test_controller.py::test_sign_out",
        "tests/merchant/test_sign_in.py::test_sign_out_ends_the_session",
        "tests/login/test_session_cache.py::"
        "test_sign_out_on_one_instance_ends_the_session_on_the_other",
        "tests/login/test_session_cache.py::"
        "test_a_slow_reader_cannot_put_back_what_a_writer_invalidated",
        "tests/login/test_session_cache.py::"
        "test_invalidations_missed_while_redis_was_away_are_sent_when_it_returns",
        "tests/scale/test_two_instances.py::"
        "test_a_passcode_requested_on_one_is_accepted_on_the_other_and_sign_out_ends_it_on_both",
        "tests/login/test_session_cache.py::test_a_session_planted_in_redis_is_not_believed",
    ],
    "customer and merchant sessions never grant each other anything": [
        "tests/merchant/test_sign_in.py::test_a_customer_session_never_grants_merchant_access",
    ],
    # --- the web layer
    "CSRF on every POST route (signed out and signed in); only the signed webhook exempt": [
        "tests/web/test_security.py::test_every_post_route_needs_the_csrf_token",
        "tests/web/test_security.py::test_only_the_stripe_webhook_is_exempt",
        "tests/security/test_routes.py::test_every_post_needs_the_csrf_token_when_signed_in",
        "tests/security/test_routes.py::test_only_get_routes_skip_the_csrf_check",
        "tests/billing/stripe/test_webhooks.py::test_bad_signatures_are_refused_and_change_nothing",
    ],
    "security headers on every response; HTML and private downloads not cached": [
        "tests/web/test_security.py::test_security_headers_on_pages",
        "tests/web/test_security.py::test_security_headers_on_static_files",
        "tests/web/test_security.py::test_hsts_only_over_https",
        "tests/security/test_routes.py::"
        "test_every_page_has_the_security_headers_and_changes_nothing",
    ],
    "XSS: every merchant and customer text is inert on every page and in the email": [
        "tests/merchant/test_profile.py::test_markup_typed_into_the_profile_is_inert_on_customer_pages",
        "tests/merchant/test_profile.py::test_each_field_is_validated_with_a_message_beside_it",
        "tests/security/test_xss.py::test_markup_is_inert_everywhere",
    ],
    "IDOR: another customer's subscription, card, invoice (page, PDF, pay), tax ID → 404": [
        "tests/security/test_routes.py::test_another_customers_objects_are_not_found",
        "tests/portal/subscriptions/test_controller.py::"
        "test_another_customers_subscription_is_not_found",
        "tests/portal/payment_methods/test_controller.py::"
        "test_make_default_of_someone_elses_card_is_404",
        "tests/portal/payment_methods/test_controller.py::test_remove_someone_elses_card_is_404",
        "tests/portal/invoices/test_controller.py::test_drafts_and_other_customers_invoices_are_404",
        "tests/portal/invoices/test_controller.py::test_pay_someone_elses_invoice_is_404",
        "tests/portal/details/test_controller.py::test_someone_elses_tax_id_is_404",
    ],
    "open redirects: only local /merchant paths as next": [
        "tests/merchant/test_sign_in.py::test_next_is_ignored_unless_it_is_a_local_merchant_path",
        "tests/merchant/test_sign_in.py::test_safe_next_keeps_local_paths_and_plain_queries",
    ],
    "bodies over 1 MiB → 413; over-long fields → 422": [
        "tests/web/test_security.py::test_a_body_over_one_mebibyte_is_refused",
        "tests/security/test_routes.py::test_every_post_refuses_a_body_over_one_mebibyte",
        "tests/security/test_routes.py::test_every_text_field_refuses_an_over_long_value",
        "tests/merchant/test_branding.py::test_a_body_over_the_upload_route_limit_is_refused_before_parsing",
    ],
    "client address: X-Forwarded-For only from trusted proxies": [
        "tests/security/test_proxies.py::test_a_trusted_proxy_sets_the_client_address",
        "tests/security/test_proxies.py::test_without_trusted_proxies_the_header_is_ignored",
        "tests/security/test_proxies.py::test_serve_trusts_only_the_configured_proxies",
    ],
    "logs: JSON lines, secrets redacted": [
        "tests/test_logging.py::test_secrets_are_redacted",
        "tests/test_logging.py::test_the_filter_renders_and_redacts_message_extras_and_traceback",
        "tests/web/test_health.py::test_portico_serve_with_two_workers",
    ],
    "errors never show a stack trace": [
        "tests/web/test_errors.py::test_a_crash_shows_no_traceback",
    ],
}


def _resolve(reference: str):
    path, _, name = reference.partition("::")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    if not name:
        return module
    found = getattr(module, name, None)
    assert found is not None, f"{reference} no longer exists: update tests/security/RULES"
    return found


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_points_at_existing_tests(rule):
    for reference in RULES[rule]:
        found = _resolve(reference)
        if inspect.isfunction(found):
            assert found.__name__.startswith("test_"), reference
