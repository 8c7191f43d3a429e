"""Public branding resources: the per-configuration stylesheet and brand images."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.configuration import service
from app.configuration.tables import BrandAsset

YEAR = "public, max-age=31536000, immutable"


class BrandingController(Controller):
    path = "/p"

    @get("/brand/{configuration_id:str}/brand.css", name="brand:css")
    async def stylesheet(self, configuration_id: FromPath[str]) -> Response[str]:
        configuration = await service.get(configuration_id)
        if configuration is None:
            raise NotFoundException()
        # The URL carries a version of the content, so it can be cached for a long time.
        return Response(
            service.brand_css(configuration),
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @get("/assets/{asset_id:str}", name="brand:asset")
    async def asset(self, asset_id: FromPath[str]) -> Response[bytes]:
        row = (
            await BrandAsset.select(BrandAsset.content_type, BrandAsset.data)
            .where(BrandAsset.id == asset_id)
            .first()
        )
        if row is None:
            raise NotFoundException()
        return Response(
            bytes(row["data"]), media_type=row["content_type"], headers={"Cache-Control": YEAR}
        )
