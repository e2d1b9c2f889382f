"""The public API: validates, orchestrates the internal services, keeps no state."""
