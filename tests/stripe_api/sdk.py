"""A ``stripe.HTTPXClient`` that sends form bodies with ``content=`` instead of ``data=``.

``stripe`` 16.1's ``HTTPXClient`` passes the encoded form body as ``data="a=1&b=2"``; httpx
0.28 deprecates text in ``data=`` and warns (``DeprecationWarning: Use 'content=<...>' to
upload raw bytes/text content.``) on every POST.  Under ``-W error`` that warning is raised
inside the SDK's transport and surfaces as ``stripe.APIConnectionError``.  This subclass
changes only that keyword; everything else (retries, timeouts, headers) is the SDK's.
Code that must use the stock class under ``-W error`` needs the warnings filter
``ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

CONTENT_WARNING = "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"


class HTTPXClient(stripe.HTTPXClient):
    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, str):
            kwargs["content"] = data.encode("utf-8")
        elif isinstance(data, bytes):
            kwargs["content"] = data
        elif data:
            kwargs["data"] = data
        return [args, kwargs]
