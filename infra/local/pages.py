"""Pages the local cloud serves beside the API: the OpenAPI document and Swagger UI.

Swagger UI's assets come from the swagger-ui-py package and are served from this machine:
no CDN, so `/docs` works offline.
"""

from __future__ import annotations

import importlib.util
import json
import mimetypes
from pathlib import Path
from typing import Any

Page = tuple[int, dict[str, str], bytes]

_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>CRM API (local)</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      persistAuthorization: true
    });
  </script>
</body>
</html>
"""


def swagger_assets() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: run `make venv`")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _not_found() -> Page:
    return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'


def pages(root: Path) -> dict[str, Any]:
    document_path = root / "docs" / "openapi.json"
    assets = swagger_assets()

    def openapi(request: Any) -> Page:
        document = json.loads(document_path.read_text())
        host = request.headers.get("host")
        if host:
            document["servers"] = [{"url": f"http://{host}", "description": "local cloud"}]
        return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()

    def docs(request: Any) -> Page:
        return 200, {"Content-Type": "text/html; charset=utf-8"}, _DOCS_HTML.encode()

    def docs_asset(request: Any) -> Page:
        name = request.path.removeprefix("/docs/")
        path = (assets / name).resolve()
        if not name or path.parent != assets.resolve() or not path.is_file():
            return _not_found()
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return 200, {"Content-Type": media, "Cache-Control": "max-age=3600"}, path.read_bytes()

    return {"/openapi.json": openapi, "/docs": docs, "/docs/": docs_asset}


def wants_json(request: Any) -> bool:
    """A local page answers JSON to `Accept: application/json` (or `?format=json`), else HTML."""
    query = getattr(request, "query", None) or {}
    if "json" in (query.get("format") or []):
        return True
    accept = str((getattr(request, "headers", None) or {}).get("accept", ""))
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() == "application/json":
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00") for p in params)
    return False
