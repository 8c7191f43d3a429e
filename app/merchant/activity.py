"""The activity log (``/merchant/activity``), its CSV export and the cancellation summary.

All three are GET forms: the filters live in the URL, so a filtered page can be bookmarked,
reloaded and paginated without JavaScript; with htmx the filter form and the page links swap
``#main-content`` and push the URL. The export answers a ``text/csv`` attachment with the same
filters, streamed in batches.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.response import Stream

from app.audit import queries
from app.i18n import gettext as _
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, merchant_access
from app.merchant.email import area_context
from app.web.htmx import page as render_page

ACTIVITY_PATH = "/merchant/activity"
URLS = {
    "activity": ACTIVITY_PATH,
    "export": f"{ACTIVITY_PATH}/export.csv",
    "cancellations": f"{ACTIVITY_PATH}/cancellations",
}


def _page_number(value: str) -> int:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 7 else 1


def actor_labels() -> dict[str, str]:
    return {"customer": _("Customer"), "merchant": _("Merchant"), "system": _("Portico")}


def reason_rows(summary: queries.CancellationSummary) -> list[dict[str, Any]]:
    """Stripe's eight reasons in Stripe's order (zero counts included), then any other."""
    labels = queries.reason_labels()
    rows = [
        {"reason": key, "label": label, "count": summary.counts.get(key, 0)}
        for key, label in labels.items()
    ]
    for key, count in sorted(summary.counts.items()):
        if key not in labels:
            label = _("No reason given") if key == "" else key
            rows.append({"reason": key, "label": label, "count": count})
    for row in rows:
        row["percent"] = round(100 * row["count"] / summary.total) if summary.total else 0
    return rows


class ActivityController(Controller):
    path = ACTIVITY_PATH
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:activity")
    async def activity(
        self,
        request: Request,
        access: NamedDependency[MerchantAccess],
        email: FromQuery[str] = "",
        action: FromQuery[str] = "",
        date_from: FromQuery[str] = "",
        date_to: FromQuery[str] = "",
        page: FromQuery[str] = "1",
    ) -> Response:
        actions = await queries.known_actions()
        filters, errors = queries.parse_filters(email, action, date_from, date_to, actions)
        result = None if errors else await queries.events(filters, _page_number(page))
        return await self._log_page(
            request,
            access,
            actions,
            {"email": email, "action": action, "date_from": date_from, "date_to": date_to},
            filters,
            errors,
            result,
        )

    @get("/export.csv", name="merchant:activity_export")
    async def export(
        self,
        request: Request,
        access: NamedDependency[MerchantAccess],
        email: FromQuery[str] = "",
        action: FromQuery[str] = "",
        date_from: FromQuery[str] = "",
        date_to: FromQuery[str] = "",
    ) -> Response:
        actions = await queries.known_actions()
        filters, errors = queries.parse_filters(email, action, date_from, date_to, actions)
        if errors:
            values = {"email": email, "action": action, "date_from": date_from, "date_to": date_to}
            return await self._log_page(request, access, actions, values, filters, errors, None)
        return Stream(
            queries.export_csv(filters),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{queries.export_filename()}"',
                "Cache-Control": "no-store",
            },
        )

    @get("/cancellations", name="merchant:cancellations")
    async def cancellations(
        self,
        request: Request,
        access: NamedDependency[MerchantAccess],
        date_from: FromQuery[str] = "",
        date_to: FromQuery[str] = "",
    ) -> Response:
        default_from, default_to = queries.default_period()
        if not date_from.strip() and not date_to.strip():
            date_from, date_to = default_from.isoformat(), default_to.isoformat()
        start, end, errors = queries.parse_range(date_from, date_to)
        summary = None
        period: tuple[date, date] | None = None
        if not errors:
            period = (start or date(2000, 1, 1), end or default_to)
            summary = await queries.cancellation_summary(*period)
        return render_page(
            request,
            "merchant/activity/cancellations.html",
            fragment="main_content",
            status=422 if errors else 200,
            context={
                **await area_context(request, access, "activity"),
                "activity_urls": URLS,
                "values": {"date_from": date_from[:10], "date_to": date_to[:10]},
                "errors": errors,
                "summary": summary,
                "period": period,
                "rows": reason_rows(summary) if summary else [],
                "reasons": queries.reason_labels(),
            },
        )

    async def _log_page(
        self,
        request: Request,
        access: MerchantAccess,
        actions: dict[str, str],
        values: dict[str, str],
        filters: queries.Filters,
        errors: dict[str, str],
        result: queries.EventPage | None,
    ) -> Response:
        return render_page(
            request,
            "merchant/activity/log.html",
            fragment="main_content",
            status=422 if errors else 200,
            context={
                **await area_context(request, access, "activity"),
                "activity_urls": URLS,
                "values": {name: value[:320] for name, value in values.items()},
                "errors": errors,
                "actions": actions,
                "action_options": {"": _("Any action"), **actions},
                "actors": actor_labels(),
                "filters": filters,
                "query": filters.query(),
                "result": result,
            },
        )
