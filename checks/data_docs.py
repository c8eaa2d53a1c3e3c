"""GX Data Docs for a run's validations, made to work offline and without identifying anyone.

GX writes pages that pull jQuery, Bootstrap, bootstrap-table, Font Awesome,
vega and friends from CDNs and show a logo from a remote URL carrying the
context id (a tracking pixel). The auditors' machines are offline, so after
every build the exact versions the templates ask for, vendored under
`checks/datadocs_static/` (from the npm registry; see its README), are copied
into the site and every CDN URL is rewritten to a relative local path. The
remote logo and any other remote image or external link are removed, and so are the
subresource-integrity attributes (`integrity`, `crossorigin`: a page opened from disk cannot
satisfy them, and the browser then refuses the scripts) and GX's newsletter footer.

The results passed in were masked by `checks.run` before they got here (no
ID number or name leaves `run_suite`, and every delivered text had its HTML
characters replaced by inert full-width look-alikes, so a `<script>` in a
cell cannot become markup); as a last line of defence every page is scanned
and anything shaped like an ID number is masked again.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from lowincome.privacy import ID_PATTERN, redact

STATIC_DIR = Path(__file__).with_name("datadocs_static")
from .names import SITE_NAME, column_label  # noqa: F401 (SITE_NAME re-exported)
VENDOR_DIR = "static/vendor"  # inside the site

# Remote URL prefix → vendored directory (relative to STATIC_DIR). Longest prefixes first.
CDN_MAP: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/": "bootstrap-dark@1.1.0/",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/": "bootstrap-datepicker@1.9.0/dist/",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/": "fontawesome-free@6.6.0/",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/": "popper.js@1.12.9/dist/",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/dist/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/": "bootstrap@4.3.1/dist/",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/": "bootstrap@4.3.1/dist/",
    "https://unpkg.com/bootstrap-table@1.19.0/": "bootstrap-table@1.19.0/",
    "https://unpkg.com/bootstrap-table@1.19.1/": "bootstrap-table@1.19.1/",
    # Bare package URLs resolve to the package's `jsdelivr` entry point.
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/build/vega-embed.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/build/vega.min.js",
}

_URL_ATTR = re.compile(r"""(?P<attr>\b(?:src|href)\s*=\s*)(?P<q>["'])(?P<url>[^"']*)(?P=q)""", re.IGNORECASE)
_REMOTE_IMG = re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["']https?://[^>]*>""", re.IGNORECASE)
_REMOTE_CSS_URL = re.compile(r"""url\(\s*['"]?(?:https?:)?//[^)]*\)""", re.IGNORECASE)
_ID_LIKE = re.compile(ID_PATTERN)
# Subresource-integrity attributes: a file:// page cannot satisfy `crossorigin`, so Chromium refuses the
# vendored popper and bootstrap scripts and the tabs and "Show more info" buttons do nothing.
_ASSET_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
_SRI_ATTR = re.compile(r"""\s+(?:integrity|crossorigin)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""", re.IGNORECASE)
# GX's newsletter footer ("Stay current on everything GX ... Subscribe"): not for an auditor's report.
# Column headings of a validation page (section header and sidebar link): shown with the delivered header.
_COLUMN_HEADING = re.compile(
    r"""(?P<open><h5 class="m-0" >|<a class="nav-link ge-navigation-sidebar-link[^>]*>)(?P<pad>\s*)(?P<name>[a-z][a-z0-9_]*)(?P<end>\s*</(?:h5|a)>)"""
)
_NEWSLETTER = re.compile(r"<footer>\s*<p>[^<]*newsletter.*?</footer>", re.IGNORECASE | re.DOTALL)


def _local_for(url: str) -> str | None:
    for prefix in sorted(CDN_MAP, key=len, reverse=True):
        if url == prefix or (prefix.endswith("/") and url.startswith(prefix)):
            return CDN_MAP[prefix] + url[len(prefix):] if prefix.endswith("/") else CDN_MAP[prefix]
    return None


def _fix_local(m: re.Match, url: str, page: Path, site: Path, to_root: str) -> str:
    """Repair a local link GX got wrong (its deepest validation pages point at the favicon one level short)."""
    path = url.split("#")[0].split("?")[0]
    if not path or url.startswith(("data:", "javascript:", "mailto:")) or (page.parent / path).exists():
        return m.group(0)
    from_root = re.sub(r"^(\.\./)+", "", path)
    if (site / from_root).exists():
        return f'{m.group("attr")}{m.group("q")}{to_root}/{from_root}{url[len(path):]}{m.group("q")}'
    return m.group(0)


def _rewrite_page(html: str, page: Path, site: Path) -> tuple[str, list[str]]:
    """Point CDN URLs at the vendored copies; drop remote images and links. Returns (html, unmapped URLs)."""
    to_root = os.path.relpath(site, page.parent).replace(os.sep, "/")
    unmapped: list[str] = []
    html = _REMOTE_IMG.sub("", html)

    def repl(m: re.Match) -> str:
        url = m.group("url")
        if not re.match(r"(?i)https?://|//", url):
            return _fix_local(m, url, page, site, to_root)
        local = _local_for(url)
        if local is not None:
            return f'{m.group("attr")}{m.group("q")}{to_root}/{VENDOR_DIR}/{local}{m.group("q")}'
        unmapped.append(url)
        # An external link or resource that is not vendored: neutralised (offline, and no tracking).
        return f'{m.group("attr")}{m.group("q")}#{m.group("q")}'

    html = _URL_ATTR.sub(repl, html)
    html = _REMOTE_CSS_URL.sub("none", html)
    html = _ASSET_TAG.sub(lambda m: _SRI_ATTR.sub("", m.group(0)), html)
    html = _NEWSLETTER.sub("", html)
    html = _COLUMN_HEADING.sub(lambda m: m.group("open") + m.group("pad") + column_label(m.group("name")) + m.group("end"), html)
    # Last line of defence: nothing shaped like an ID number may reach an auditor's page.
    # (Every shape of privacy.ID_PATTERN: 18-character, 15-digit legacy, full-width, an Excel float.)
    html = redact(html) if _ID_LIKE.search(html) else html
    return html, unmapped


def page_times(site: Path) -> dict[Path, int]:
    """Every page of the site with its modification time (ns): what a partial build leaves untouched."""
    return {page: page.stat().st_mtime_ns for page in site.rglob("*.html")}


def make_offline(site: Path, only_changed_since: dict[Path, int] | None = None) -> list[str]:
    """Vendor the static files into `site` and rewrite its HTML pages; returns URLs that had no local copy.

    With `only_changed_since` (from `page_times` before a partial build), only pages that are new or
    were written since are rewritten: the others were made offline when they were drawn.
    """
    shutil.copytree(STATIC_DIR, site / VENDOR_DIR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README*"))
    unmapped: list[str] = []
    for css in site.rglob("*.css"):  # GX's own stylesheet draws the remote logo as a background
        text = css.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = _REMOTE_CSS_URL.sub("none", text)
        if cleaned != text:
            css.write_text(cleaned, encoding="utf-8", errors="surrogateescape")
    for page in site.rglob("*.html"):
        if only_changed_since is not None and only_changed_since.get(page) == page.stat().st_mtime_ns:
            continue
        html, missing = _rewrite_page(page.read_text(encoding="utf-8"), page, site)
        unmapped += missing
        page.write_text(html, encoding="utf-8")
    return sorted(set(unmapped))


def _site_config(site_dir: Path) -> dict:
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        # checks.docs_render: the status in three states (passed / warnings only / failed), Chinese first
        "site_index_builder": {
            "class_name": "StatusSiteIndexBuilder", "module_name": "checks.docs_render",
            "renderer": {"class_name": "StatusSiteIndexPageRenderer", "module_name": "checks.docs_render"},
        },
        "site_section_builders": {
            "validations": {"renderer": {
                "class_name": "StatusValidationResultsPageRenderer", "module_name": "checks.docs_render",
                "column_section_renderer": {
                    "class_name": "ValidationResultsColumnSectionRenderer",
                    "table_renderer": {"class_name": "SeverityTableRenderer", "module_name": "checks.docs_render"},
                },
            }},
        },
    }


def build_data_docs(validations: Iterable, reports_dir: Path, *, work_dir: Path | None = None) -> Path:
    """Build the Data Docs site for `validations` into `<reports_dir>/validation/`; return its index.html.

    `validations`: the `checks.run.DeliveryValidation` objects returned by `run_suite` (one per
    delivered file; their GX results are already masked).

    The same code path as the nightly run: the results go into a file-mode GX store with
    `checks.record._store` and the site is drawn from that store by `checks.record.render_data_docs`.
    The store lives under `work_dir` (a temporary directory by default, removed afterwards); the
    site directory is rebuilt from scratch so pages of an earlier build cannot linger.
    """
    from .record import _store, render_data_docs

    reports_dir = Path(reports_dir)
    site_dir = (reports_dir / SITE_NAME).resolve()
    if site_dir.exists():
        shutil.rmtree(site_dir)
    owns_work = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="gx_docs_")) if owns_work else Path(work_dir)
    try:
        _store(work / "gx", list(validations))
        return render_data_docs(work, reports_dir)
    finally:
        if owns_work:
            shutil.rmtree(work, ignore_errors=True)
