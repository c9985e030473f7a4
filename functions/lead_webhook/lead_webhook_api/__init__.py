"""The lead webhook's parts: the delivery's handling (delivery.py) and its OpenAPI
description (openapi.py)."""
