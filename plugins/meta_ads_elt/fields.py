"""API field lists, action types and primary keys, declared once.

Shared by several modules: edit only your own section, with small insertions.
"""

from __future__ import annotations

# --- Insights (async report runs) -------------------------------------------------------------

# --- Ad objects (accounts, campaigns, ad sets, ads) --------------------------------------------

# --- Lead Ads ----------------------------------------------------------------------------------

# --- Conversations (Messenger / Instagram) -----------------------------------------------------
