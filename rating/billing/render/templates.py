"""The Jinja2 templates of rendered documents, and a site's own.

A site overrides a template by putting a file of the same name in a
`templates` folder beside its site file (`templates/bill.html`,
`templates/statement.html`); the others come from this package. Templates
are autoescaped and strict: a variable the document does not have is an
error, not an empty string. Every template error names the file and line.
"""

from __future__ import annotations

import traceback
from functools import lru_cache
from pathlib import Path

import jinja2

from rating.errors import ConfigError

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"


class TemplateError(ConfigError):
    """A template that does not compile or render; nothing was written."""

    reason = "BAD_TEMPLATE"


@lru_cache(maxsize=16)
def environment(site_folder: Path | None) -> jinja2.Environment:
    """Templates of the site folder first, then the package's (compiled once per process)."""
    folders = [str(site_folder)] if site_folder is not None and site_folder.is_dir() else []
    loader = jinja2.FileSystemLoader([*folders, str(PACKAGE_TEMPLATES)])
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html"]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def template(site_folder: Path | None, name: str) -> jinja2.Template:
    """The named template, compiled; a syntax error is a TemplateError naming file and line."""
    env = environment(site_folder)
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or "syntax error", where=f"{exc.filename or name}:{exc.lineno}",
                            file=exc.filename, line=exc.lineno) from None
    except jinja2.TemplateNotFound:
        raise TemplateError(f"no template {name!r}", where=str(site_folder or PACKAGE_TEMPLATES)) from None


def render(site_folder: Path | None, name: str, **context: object) -> str:
    """The template rendered; an unknown variable or a failing expression is a
    TemplateError naming the template file and line."""
    compiled = template(site_folder, name)
    try:
        return compiled.render(**context)
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc), where=_place(exc, compiled)) from None


def _place(exc: BaseException, compiled: jinja2.Template) -> str:
    """file:line of the innermost template frame (Jinja rewrites tracebacks to template lines)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".html")]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return compiled.filename or compiled.name or "template"
