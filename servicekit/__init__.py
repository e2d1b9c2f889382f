"""What every Semantik service does the same way, and nothing service-specific.

- `config`: typed settings from environment variables.
- `server`: grpc.aio server bootstrap (health, reflection, telemetry, SIGTERM drain).
- `readiness`: the loop that keeps `grpc.health.v1` in step with a service's dependencies.
- `errors`: canonical status codes with `google.rpc` details.
- `channels`: client channels to other services, with deadlines propagated.
- `telemetry`: OpenTelemetry set-up and interceptors.
"""
