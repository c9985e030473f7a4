"""Hypothesis strategies shared by the unit tests."""

from __future__ import annotations

from hypothesis import strategies as st

from crm_core.auth import TENANT_ID_PATTERN

tenant_ids = st.from_regex(TENANT_ID_PATTERN, fullmatch=True)
ulids = st.from_regex(r"[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True)
# Text as clients send it: anything, including control characters and lone surrogates.
any_text = st.text(max_size=300)
