"""`semantik-admin`: operator commands for the metadata database.

    semantik-admin partitions [summary|hot|skew|recommend|full] [--json]
    semantik-admin backup [--dir backups]
    semantik-admin restore FILE
    semantik-admin prune-backups [--dir backups] [--daily 7] [--weekly 4] [--monthly 12] [--dry-run]

The database is `--database-url`, else DATABASE_URL, else the embedded run's
PostgreSQL (`semantik-run`). Partition reports read only the monitoring views
of migration 0002 (`chunk_partition_rows`, `chunk_partition_skew`,
`chunk_partition_hot`, `chunk_partition_collections`). Backups are
`pg_dump --format=custom` files named `semantik-YYYYmmddTHHMMSSZ.dump`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

EMBEDDED_DATABASE_URL = "postgresql://postgres@127.0.0.1:54329/semantik"
BACKUP_PREFIX = "semantik-"
BACKUP_SUFFIX = ".dump"
BACKUP_STAMP = "%Y%m%dT%H%M%SZ"
BACKUP_NAME = re.compile(r"^semantik-(\d{8}T\d{6}Z)\.dump$")

# Recommendation thresholds.
DOMINANT_SHARE = 0.5  # one partition holds more than this share of the rows
DOMINANT_MIN_ROWS = 1_000_000  # … and is big enough for it to matter
SUBPARTITION_ROWS = 50_000_000  # one partition this big: sub-partition it
COLLISION_SHARE = 0.1  # two collections this big share a partition
DEAD_SHARE = 0.2  # dead rows over live rows worth a VACUUM
DEAD_MIN_ROWS = 1000


def database_url(explicit: str | None) -> str:
    return explicit or os.environ.get("DATABASE_URL") or EMBEDDED_DATABASE_URL


def _pg_bin(name: str) -> str:
    """pg_dump/pg_restore: from PG_BIN_DIR, else the pgserver wheel's (PostgreSQL 16)."""
    folder = os.environ.get("PG_BIN_DIR")
    if folder:
        return str(Path(folder) / name)
    # Lazily: a deployment with its own client tools needs no pgserver wheel.
    from semantik_runner.stores import PG_BIN  # noqa: PLC0415

    return str(PG_BIN / name)


# Partitions -------------------------------------------------------------------


async def _fetch_views(url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        rows = await connection.fetch("SELECT * FROM chunk_partition_rows ORDER BY partition_key")
        skew = await connection.fetchrow("SELECT * FROM chunk_partition_skew")
        hot = await connection.fetch(
            "SELECT * FROM chunk_partition_hot ORDER BY activity DESC, partition_key"
        )
        owners = await connection.fetch(
            "SELECT * FROM chunk_partition_collections ORDER BY chunk_rows DESC, collection_id"
        )
    finally:
        await connection.close()
    return {
        "partitions": [_plain(r) for r in rows],
        "skew": _plain(skew),
        "hot": [_plain(r) for r in hot],
        "collections": [_plain(r) for r in owners],
    }


def _plain(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, float):
            out[key] = round(value, 4)
        else:
            out[key] = value
    return out


def _collections_by_partition(views: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for owner in views["collections"]:
        by_partition.setdefault(owner["partition_key"], []).append(owner)
    return by_partition


def summary(views: dict[str, Any]) -> dict[str, Any]:
    skew = views["skew"]
    partitions = views["partitions"]
    recommendations = recommend(views)
    actionable = [r for r in recommendations if r["kind"] != "none"]
    return {
        "status": "attention" if actionable else "ok",
        "partitions": skew["partitions"],
        "nonempty_partitions": skew["nonempty_partitions"],
        "total_rows": skew["total_rows"],
        "total_bytes": sum(p["total_bytes"] for p in partitions),
        "dead_rows": sum(p["dead_rows"] for p in partitions),
        "collections": len(views["collections"]),
        "largest_partition": skew["largest_partition"],
        "largest_partition_rows": skew["max_rows"],
        "max_to_mean": skew["max_to_mean"],
        "hot_partitions": [h["partition_key"] for h in views["hot"]],
        "recommendations": len(actionable),
    }


def hot(views: dict[str, Any]) -> list[dict[str, Any]]:
    owners = _collections_by_partition(views)
    return [
        {
            "partition_key": h["partition_key"],
            "partition_name": h["partition_name"],
            "activity": h["activity"],
            "activity_share": h["activity_share"],
            "times_fair_share": h["times_fair_share"],
            "live_rows": h["live_rows"],
            "collections": [o["collection_id"] for o in owners.get(h["partition_key"], [])],
        }
        for h in views["hot"]
    ]


def skew(views: dict[str, Any], top: int = 10) -> dict[str, Any]:
    owners = _collections_by_partition(views)
    largest = sorted(views["partitions"], key=lambda p: (-p["live_rows"], p["partition_key"]))
    return {
        **views["skew"],
        "largest": [
            {
                "partition_key": p["partition_key"],
                "partition_name": p["partition_name"],
                "live_rows": p["live_rows"],
                "row_share": p["row_share"],
                "total_bytes": p["total_bytes"],
                "collections": [o["collection_id"] for o in owners.get(p["partition_key"], [])],
            }
            for p in largest[:top]
            if p["live_rows"] > 0
        ],
    }


def recommend(views: dict[str, Any]) -> list[dict[str, Any]]:
    """Rebalancing and maintenance advice from the views, most important first."""
    out: list[dict[str, Any]] = []
    total = views["skew"]["total_rows"]
    owners = _collections_by_partition(views)
    for part in views["partitions"]:
        key, name, rows = part["partition_key"], part["partition_name"], part["live_rows"]
        members = owners.get(key, [])
        if rows >= SUBPARTITION_ROWS:
            out.append(
                {
                    "kind": "subpartition",
                    "partition": name,
                    "message": f"{name} holds {rows:,} rows; sub-partition it by HASH (id) "
                    "to keep its indexes and VACUUM small (hydration stays one partition).",
                }
            )
        elif total and rows / total > DOMINANT_SHARE and rows >= DOMINANT_MIN_ROWS:
            names = ", ".join(m["collection_id"] for m in members) or "?"
            out.append(
                {
                    "kind": "dominant",
                    "partition": name,
                    "message": f"{name} holds {rows / total:.0%} of all chunk rows "
                    f"(collections: {names}). Partitions follow collections, so one "
                    "large collection cannot be spread; reads still touch one partition. "
                    "Watch its VACUUM and index size.",
                }
            )
        big = [m for m in members if total and m["chunk_rows"] / total >= COLLISION_SHARE]
        if len(big) >= 2:
            names = ", ".join(m["collection_id"] for m in big)
            out.append(
                {
                    "kind": "collision",
                    "partition": name,
                    "message": f"large collections {names} hash to the same partition {name}. "
                    "To separate them, re-create one under another id (the key is "
                    "chunk_partition_key(collection id)).",
                }
            )
        dead = part["dead_rows"]
        if dead >= DEAD_MIN_ROWS and dead > DEAD_SHARE * max(rows, 1):
            out.append(
                {
                    "kind": "vacuum",
                    "partition": name,
                    "message": f"{name} has {dead:,} dead rows for {rows:,} live ones.",
                    "command": f"VACUUM (ANALYZE) {name};",
                }
            )
        if rows > 0 and part["last_analyzed"] is None:
            out.append(
                {
                    "kind": "analyze",
                    "partition": name,
                    "message": f"{name} has rows but was never analyzed; plans may be poor.",
                    "command": f"ANALYZE {name};",
                }
            )
    for h in views["hot"]:
        out.append(
            {
                "kind": "hot",
                "partition": h["partition_name"],
                "message": f"{h['partition_name']} does {h['activity_share']:.0%} of the chunk "
                f"work ({h['times_fair_share']:.1f}x its fair share); its collections are the "
                "busy ones. Consider its indexes' cache residency (shared_buffers).",
            }
        )
    if not out:
        message = "no chunks yet" if total == 0 else "partitions healthy; no action needed"
        out.append({"kind": "none", "partition": None, "message": message})
    return out


def _report(command: str, views: dict[str, Any]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if command in ("summary", "full"):
        parts["summary"] = summary(views)
    if command in ("hot", "full"):
        parts["hot"] = hot(views)
    if command in ("skew", "full"):
        parts["skew"] = skew(views)
    if command in ("recommend", "full"):
        parts["recommendations"] = recommend(views)
    if command == "full":
        parts["partitions"] = views["partitions"]
    return parts


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _print_report(parts: dict[str, Any]) -> None:
    if "summary" in parts:
        s = parts["summary"]
        print(f"Chunk partitions: {s['status'].upper()}")
        print(f"  partitions        {s['nonempty_partitions']} of {s['partitions']} hold rows")
        print(f"  rows              {s['total_rows']:,} live, {s['dead_rows']:,} dead")
        print(f"  size              {_size(s['total_bytes'])}")
        print(f"  collections       {s['collections']}")
        print(
            f"  largest           p{s['largest_partition']:02d} "
            f"({s['largest_partition_rows']:,} rows, {s['max_to_mean']:.1f}x mean)"
        )
        hot_list = ", ".join(f"p{k:02d}" for k in s["hot_partitions"]) or "none"
        print(f"  hot               {hot_list}")
        print(f"  recommendations   {s['recommendations']}")
    if "hot" in parts:
        print("\nHot partitions (>= 3x fair share of scans and writes):")
        if not parts["hot"]:
            print("  none")
        for h in parts["hot"]:
            print(
                f"  {h['partition_name']:<10} {h['activity_share']:>6.1%} of activity "
                f"({h['times_fair_share']:.1f}x fair)  {h['live_rows']:>12,} rows  "
                f"{', '.join(h['collections'])}"
            )
    if "skew" in parts:
        k = parts["skew"]
        print(
            f"\nSkew: max/mean {k['max_to_mean']:.2f}, coefficient of variation "
            f"{k['coefficient_of_variation']:.2f}, {k['nonempty_partitions']} non-empty"
        )
        for p in k["largest"]:
            print(
                f"  {p['partition_name']:<10} {p['live_rows']:>12,} rows {p['row_share']:>7.1%}"
                f"  {_size(p['total_bytes']):>10}  {', '.join(p['collections'])}"
            )
    if "recommendations" in parts:
        print("\nRecommendations:")
        for r in parts["recommendations"]:
            print(f"  [{r['kind']}] {r['message']}")
            if r.get("command"):
                print(f"      {r['command']}")


def partitions_command(args: argparse.Namespace) -> int:
    views = asyncio.run(_fetch_views(database_url(args.database_url)))
    parts = _report(args.report, views)
    if args.json:
        print(json.dumps(parts, indent=2, default=str))
    else:
        _print_report(parts)
    return 0


# Backups ---------------------------------------------------------------------


def backup_name(at: datetime) -> str:
    return f"{BACKUP_PREFIX}{at.astimezone(UTC).strftime(BACKUP_STAMP)}{BACKUP_SUFFIX}"


def backup_time(path: Path) -> datetime | None:
    match = BACKUP_NAME.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), BACKUP_STAMP).replace(tzinfo=UTC)


def backup(url: str, folder: Path, now: datetime | None = None) -> Path:
    """pg_dump in custom format to folder/semantik-<UTC stamp>.dump (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / backup_name(now or datetime.now(UTC))
    partial = target.with_suffix(".partial")
    subprocess.run(
        [_pg_bin("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", url],
        check=True,
    )
    partial.rename(target)
    return target


def _maintenance_url(url: str) -> tuple[str, str]:
    """The URL of the server's `postgres` database, and the target database's name."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path="/postgres")), name


async def _recreate_database(url: str) -> None:
    admin_url, name = _maintenance_url(url)
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await connection.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()


def restore(url: str, dump: Path) -> None:
    """Replaces the database with the dump: drop, create, pg_restore in one transaction.

    Clients connected to it are disconnected (the metadata service reconnects
    and sees the restored data; stop writers first).
    """
    if not dump.is_file():
        raise FileNotFoundError(dump)
    # Check the file before dropping anything.
    subprocess.run([_pg_bin("pg_restore"), "--list", str(dump)], check=True, capture_output=True)
    asyncio.run(_recreate_database(url))
    subprocess.run(
        [
            _pg_bin("pg_restore"),
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={url}",
            str(dump),
        ],
        check=True,
    )


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12


def backups_to_keep(times: Iterable[datetime], retention: Retention) -> set[datetime]:
    """Grandfather-father-son: the newest backup of each of the last `daily`
    days that have one, of the last `weekly` ISO weeks, and of the last
    `monthly` months. The newest backup is always kept."""
    ordered = sorted(set(times), reverse=True)
    keep: set[datetime] = set(ordered[:1])
    for count, bucket in (
        (retention.daily, lambda t: t.date().isoformat()),
        (retention.weekly, lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
        (retention.monthly, lambda t: f"{t.year}-{t.month:02d}"),
    ):
        seen: set[str] = set()
        for at in ordered:
            key = bucket(at)
            if key in seen:
                continue
            if len(seen) == count:
                break
            seen.add(key)
            keep.add(at)
    return keep


def prune_backups(folder: Path, retention: Retention, dry_run: bool = False) -> list[Path]:
    """Deletes backups the retention does not keep; the deleted (or would-be) paths."""
    backups = {at: path for path in folder.glob("*") if (at := backup_time(path)) is not None}
    keep = backups_to_keep(backups, retention)
    doomed = sorted(path for at, path in backups.items() if at not in keep)
    if not dry_run:
        for path in doomed:
            path.unlink()
    return doomed


# Command line --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semantik-admin", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        help=f"default: DATABASE_URL, else the embedded run's {EMBEDDED_DATABASE_URL}",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    partitions = commands.add_parser("partitions", help="chunk partition health")
    partitions.add_argument(
        "report",
        nargs="?",
        default="summary",
        choices=["summary", "hot", "skew", "recommend", "full"],
    )
    partitions.add_argument("--json", action="store_true", help="machine-readable output")

    backup_cmd = commands.add_parser("backup", help="pg_dump (custom format) to --dir")
    backup_cmd.add_argument("--dir", type=Path, default=Path("backups"))

    restore_cmd = commands.add_parser("restore", help="replace the database with a backup")
    restore_cmd.add_argument("file", type=Path)

    prune = commands.add_parser("prune-backups", help="keep 7 daily, 4 weekly, 12 monthly")
    prune.add_argument("--dir", type=Path, default=Path("backups"))
    prune.add_argument("--daily", type=int, default=7)
    prune.add_argument("--weekly", type=int, default=4)
    prune.add_argument("--monthly", type=int, default=12)
    prune.add_argument("--dry-run", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "partitions":
            return partitions_command(args)
        if args.command == "backup":
            print(backup(database_url(args.database_url), args.dir))
            return 0
        if args.command == "restore":
            restore(database_url(args.database_url), args.file)
            print(f"restored {args.file}")
            return 0
        if args.command == "prune-backups":
            retention = Retention(args.daily, args.weekly, args.monthly)
            doomed = prune_backups(args.dir, retention, dry_run=args.dry_run)
            verb = "would delete" if args.dry_run else "deleted"
            for path in doomed:
                print(f"{verb} {path}")
            print(f"{verb} {len(doomed)} backup(s)")
            return 0
    except (OSError, asyncpg.PostgresError, subprocess.CalledProcessError) as exc:
        print(f"semantik-admin: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
