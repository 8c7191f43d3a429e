"""The Jinja environment: autoescaping, gettext, formatting filters, static URLs with a content
hash (``app.web.static``: so static files can be cached for a year)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from app import i18n
from app.settings import PROJECT_ROOT, Settings
from app.web import formatting
from app.web.static import static_url

TEMPLATES_DIR = PROJECT_ROOT / "templates"


def configure_environment(env: Environment, settings: Settings) -> Environment:
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.globals.update(
        static_url=static_url,
        htmx_url=settings.htmx_url,
        htmx_integrity=settings.htmx_integrity,
    )
    env.filters.update(
        money=formatting.money,
        day=formatting.day,
        moment=formatting.moment,
    )
    env.trim_blocks = True
    env.lstrip_blocks = True
    return env


def make_environment(settings: Settings, directory: Path = TEMPLATES_DIR) -> Environment:
    """An environment for rendering outside requests (emails, PDFs)."""
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True),
        # Compiled templates stay cached without a stat() of every template file (and of each
        # imported macro file) per render; templates change with a deployment, i.e. a restart.
        auto_reload=False,
    )
    return configure_environment(env, settings)


def template_config(settings: Settings) -> TemplateConfig:
    environment = make_environment(settings)
    return TemplateConfig(
        engine=JinjaTemplateEngine.from_environment(environment),
    )
