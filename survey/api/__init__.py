"""The JSON API for one-stop systems and BI tools (authenticated with API keys)."""
