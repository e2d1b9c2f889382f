# Metadata service: backups of its PostgreSQL and its benchmark.
# DATABASE_URL defaults to the embedded run's PostgreSQL (`make run`).
.PHONY: backup restore backup-prune bench-metadata

METADATA_DATABASE_URL := $(or $(DATABASE_URL),postgresql://postgres@127.0.0.1:54329/semantik)
BACKUP_DIR ?= backups

backup:         ## pg_dump (custom format) to $(BACKUP_DIR)/semantik-<UTC time>.dump
	.venv/bin/semantik-admin --database-url '$(METADATA_DATABASE_URL)' backup --dir '$(BACKUP_DIR)'

restore:        ## replace the database with BACKUP_FILE=backups/semantik-….dump
	@test -n '$(BACKUP_FILE)' || { echo 'usage: make restore BACKUP_FILE=backups/semantik-….dump' >&2; exit 2; }
	.venv/bin/semantik-admin --database-url '$(METADATA_DATABASE_URL)' restore '$(BACKUP_FILE)'

backup-prune:   ## keep 7 daily, 4 weekly, 12 monthly backups in $(BACKUP_DIR)
	.venv/bin/semantik-admin prune-backups --dir '$(BACKUP_DIR)'

bench-metadata: ## COPY rows/s (1M chunks) and HydrateChunks top-10 p50/p99 over gRPC
	scripts/bootstrap.sh --dev && .venv/bin/python -m bench.metadata
