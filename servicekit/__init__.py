"""What every Semantik service does the same way, and nothing service-specific.

- `config`: typed settings from environment variables.
- `server`: grpc.aio server bootstrap (health, reflection, telemetry, SIGTERM drain).
- `readiness`: the loop that keeps `grpc.health.v1` in step with a service's dependencies.
- `errors`: canonical status codes with `google.rpc` details.
- `channels`: client channels to other services, with deadlines propagated.
- `service_auth`: the shared service token. With `SERVICE_TOKEN` set, servers
  refuse calls without it in `x-semantik-service-token` (UNAUTHENTICATED;
  `grpc.health.v1` stays open) and `channels.open_channel` sends it on every
  call. `SEMANTIK_ENV=production` without `SERVICE_TOKEN`: services refuse to
  start.
- `telemetry`: OpenTelemetry set-up and interceptors.
"""
