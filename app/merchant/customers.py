"""The customers page: find customers by email or name, and for an email address, see which
customer signing in with it opens, and why (the shared-email rule).

``GET /merchant/customers?email=…`` is a plain GET form; htmx (``hx-get`` to the same URL, URL
pushed) swaps ``#main-content``. A complete email address gets the sign-in explanation;
anything else is a prefix search on email and name. Nothing here changes anything.
"""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide

from app.i18n import gettext as _
from app.merchant import customer_lookup
from app.merchant.access import EXCEPTION_HANDLERS, MerchantAccess, merchant_access
from app.merchant.configurations import current_configuration
from app.merchant.settings import merchant_context
from app.web.forms import is_email, normalise_email
from app.web.htmx import page

URL = "/merchant/customers"


def lookup_url(email: str | None) -> str:
    """The explanation page for one customer's email (encoded: a link that goes nowhere else)."""
    return f"{URL}?{urlencode({'email': email or ''})}"


class CustomersController(Controller):
    path = URL
    dependencies = {"access": Provide(merchant_access)}
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="merchant:customers")
    async def index(self, request: Request, access: NamedDependency[MerchantAccess]) -> Response:
        typed = str(request.query_params.get("email", ""))[: customer_lookup.QUERY_MAX]
        query = typed.strip()
        email = normalise_email(query)
        errors: dict[str, str] = {}
        candidates: list[customer_lookup.Candidate] = []
        search = customer_lookup.SearchResult(matches=[], more=False)
        exact = bool(query) and is_email(email)
        if exact:
            candidates = await customer_lookup.explain(email)
        elif query:
            if len(query) < 2:
                errors["email"] = _("Enter at least 2 characters, or a whole email address.")
            else:
                search = await customer_lookup.search(query)
        configuration = await current_configuration(request, access)
        return page(
            request,
            "merchant/customers/search.html",
            fragment="main_content",
            status=422 if errors else 200,
            context={
                **await merchant_context(access, configuration, "customers"),
                "search_url": URL,
                "typed": typed,
                "query": query,
                "email": email,
                "exact": exact,
                "candidates": candidates,
                "search": search,
                "errors": errors,
                "lookup_url": lookup_url,
            },
        )
