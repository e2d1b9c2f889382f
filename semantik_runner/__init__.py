"""Runs the whole product on one machine: embedded stores, services, Envoy."""
