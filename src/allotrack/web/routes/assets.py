"""plotly.js and its style sheet, served from our own origin (the Content-Security-Policy allows no third-party
script): ``/assets/plotly-<version>.min.js`` (the bundle shipped in the plotly wheel) and
``/assets/plotly-<version>.css``. The version in the name lets them be cached for a year (``immutable``); the
script is sent gzip-compressed (4.8 MB → about 1.4 MB) to clients that accept it.

Why a style sheet: plotly.js adds its CSS rules (modebar, cursors, tooltips) at load time into a ``<style>``
element it creates, which ``style-src 'self'`` blocks. plotly.js skips that when the page already holds an
element with id ``plotly.js-style-global`` and class ``no-inline-styles``; the pages link this sheet with them,
generated from the rules in the installed bundle itself (so it always matches the script's version); the same
holds for the style element of the bundled map library (an element with its id: the sheet, linked again). Everything
else plotly styles through the CSSOM (``element.style``), which the policy allows: no ``'unsafe-inline'``, and no
``'unsafe-eval'`` (the scatter charts we draw never evaluate code).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import re
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from allotrack.web.data import NotFound

log = logging.getLogger("allotrack.web")
router = APIRouter()
CACHE = "public, max-age=31536000, immutable"
_STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_RULE = re.compile(rf"({_STRING})\s*:\s*({_STRING})")
_MAPLIBRE = re.compile(r'getElementById\("([0-9a-f]{64})"\)\)\{var e=document\.createElement\("style"\);'
                       r'e\.id="\1",e\.textContent=(\'(?:[^\'\\]|\\.)*\')')


def plotly_version() -> str:
    return version("plotly")


def script_url() -> str:
    return f"/assets/plotly-{plotly_version()}.min.js"


def css_url() -> str:
    return f"/assets/plotly-{plotly_version()}.css"


def _bundle_path() -> Path:
    spec = importlib.util.find_spec("plotly")  # the package's folder, without importing plotly
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def plotly_css(script: str) -> str:
    """The CSS rules plotly.js would insert at load (its ``"X,X div": ...`` table: X is a plot, Y the notifier),
    in the order they end up in (each rule is inserted first, so the last one added comes first)."""
    start = script.find('"X,X div"')
    end = script.find("};", start)
    if start < 0 or end < 0:
        log.warning("plotly.js style rules not found in the bundle: charts may look unstyled")
        return ""
    rules = []
    for key, value in _RULE.findall(script[start:end]):
        selector = re.sub(r"^,", " ,", _unquote(key)).replace("X", ".js-plotly-plot .plotly")
        rules.append(f"{selector.replace('Y', '.plotly-notifier')} {{{_unquote(value)}}}")
    return "\n".join(reversed(rules)) + "\n"


def maplibre_css(script: str) -> tuple[str, str]:
    """The id and the text of the style element the bundle's map library would insert at load (skipped when an
    element with that id is there: the pages link the sheet under it)."""
    found = _MAPLIBRE.search(script)
    if found is None:
        log.warning("the map library's style rules not found in the plotly.js bundle")
        return "", ""
    return found.group(1), _unquote(found.group(2)) + "\n"


@lru_cache(maxsize=1)
def _assets() -> dict[str, tuple[bytes, bytes, str, str]]:
    """name → (body, gzipped body, media type, ETag), built once per process."""
    script = _bundle_path().read_bytes()
    css = (plotly_css(script.decode("utf-8")) + maplibre_css(script.decode("utf-8"))[1]).encode()
    out = {}
    for url, body, media in ((script_url(), script, "text/javascript; charset=utf-8"),
                             (css_url(), css, "text/css; charset=utf-8")):  # fmt: skip
        tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        out[url.rsplit("/", 1)[1]] = (body, gzip.compress(body, compresslevel=6), media, tag)
    return out


@router.get("/assets/{name}")
def asset(request: Request, name: str) -> Response:
    """The plotly script or style sheet of the installed version (any other name: 404)."""
    found = _assets().get(name)
    if found is None:
        raise NotFound("no such file")
    body, zipped, media, tag = found
    headers = {"Cache-Control": CACHE, "ETag": tag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(zipped, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(body, media_type=media, headers=headers)


def install(app: Any) -> None:
    """Add the route and give the templates the two URLs (``plotly_js``, ``plotly_css``) and the id under which
    the map library's rules are linked (``plotly_maplibre_id``)."""
    app.include_router(router)
    maplibre_id = maplibre_css(_bundle_path().read_text("utf-8"))[0]
    app.state.templates.env.globals.update(plotly_js=script_url(), plotly_css=css_url(),
                                           plotly_maplibre_id=maplibre_id)  # fmt: skip
