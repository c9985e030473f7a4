"""The satisfaction function's parts: the request (request.py), the pages (pages.py), the
two routes' work (routes.py) and their OpenAPI description (openapi.py)."""
