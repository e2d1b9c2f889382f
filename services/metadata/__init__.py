"""The metadata service: Semantik's system of record on PostgreSQL."""
