"""Authentication and authorisation of the public API (one interceptor, one policy table)."""
