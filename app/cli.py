"""`ptdir`: run the service, migrate the database, load demo data, manage API keys."""

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import app.models  # noqa: F401  (every mapper configured before first use)
from app.auth import service as auth_service
from app.auth.models import Role
from app.config import InvalidSettings, get_settings
from app.db import engine_from_settings
from app.errors import ProblemError
from app.migrate import downgrade, ensure_sqlite_directory, prepare_database


def _engine() -> Engine:
    settings = get_settings()
    ensure_sqlite_directory(settings.database_url)
    return engine_from_settings(settings)


def _load_demo(engine: Engine, *, therapists: int, seed: int) -> None:
    from app.demo.generator import load_demo
    from app.therapists.models import Therapist

    with Session(engine) as session, session.begin():
        if session.scalar(select(func.count()).select_from(Therapist)):
            print("The directory already has therapists; demo data not loaded.", file=sys.stderr)
            return
        summary = load_demo(session, therapists=therapists, seed=seed)
    print(f"Loaded synthetic demo data: {summary}", file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    engine = _engine()
    prepare_database(engine)
    if args.demo:
        _load_demo(engine, therapists=5000, seed=20261127)
    engine.dispose()
    print(f"API docs: http://{args.host}:{args.port}/docs", file=sys.stderr)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=get_settings().log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        log_config=None,  # the application configures logging (JSON lines, request ids)
        access_log=False,  # and writes its own access log
        proxy_headers=False,
    )
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    prepare_database(_engine())
    print("Database is at the latest schema.", file=sys.stderr)
    return 0


def cmd_db_rebuild_search(_args: argparse.Namespace) -> int:
    from app.search import projection
    from app.search.models import SearchPractice

    engine = _engine()
    prepare_database(engine)
    with Session(engine) as session, session.begin():
        projection.refresh(session)
        if engine.dialect.name == "postgresql":
            # The rows were written in spatial-key order; keep the statistics current.
            session.execute(text("ANALYZE search_practices"))
        rows = session.scalar(select(func.count()).select_from(SearchPractice))
    print(f"Rebuilt the search projection: {rows} practices in spatial order.", file=sys.stderr)
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    downgrade(_engine(), args.revision)
    return 0


def cmd_demo_load(args: argparse.Namespace) -> int:
    engine = _engine()
    prepare_database(engine)
    _load_demo(engine, therapists=args.therapists, seed=args.seed)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    engine = _engine()
    prepare_database(engine)
    with Session(engine) as session, session.begin():
        key, plaintext = auth_service.create_key(
            session, role=Role(args.role), payer_id=args.payer, name=args.name
        )
        scope = f" for payer {key.payer_id}" if key.payer_id else ""
        print(f"Created {key.role.value} key {key.prefix}{scope}. It is shown only once:")
    print(plaintext)
    return 0


def cmd_keys_list(_args: argparse.Namespace) -> int:
    with Session(_engine()) as session:
        keys = auth_service.list_keys(session)
    print(f"{'prefix':10} {'role':6} {'payer':>6} {'created (UTC)':20} {'revoked':8} name")
    for key in keys:
        print(
            f"{key.prefix:10} {key.role.value:6} {key.payer_id or '-':>6} "
            f"{key.created_at:%Y-%m-%d %H:%M:%S}  {'yes' if key.revoked_at else 'no':8} "
            f"{key.name or ''}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with Session(_engine()) as session, session.begin():
        key = auth_service.revoke_key(session, prefix=args.prefix)
        print(f"Revoked key {key.prefix}.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.imports.console import import_file
    from app.imports.formats import Format
    from app.imports.roster import Mode
    from app.imports.service import OnError

    engine = _engine()
    prepare_database(engine)
    return import_file(
        engine,
        path=Path(args.file),
        format=Format(args.format),
        payer_id=args.payer,
        plans=Path(args.plans) if args.plans else None,
        mode=Mode(args.mode),
        dry_run=args.dry_run,
        on_error=OnError(args.on_error),
        import_dir=get_settings().import_dir,
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from app.imports.console import run_worker

    engine = _engine()
    prepare_database(engine)
    return run_worker(engine, get_settings().import_dir, once=args.once)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptdir",
        description="Physical therapist directory API. Configure with PTDIR_DATABASE_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--graceful-timeout",
        type=float,
        default=20.0,
        help="on SIGTERM, seconds to let requests in flight finish before stopping",
    )
    serve.add_argument(
        "--demo", action="store_true", help="load synthetic demo data if the directory is empty"
    )
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="migrate to the latest schema").set_defaults(
        handler=cmd_db_upgrade
    )
    db.add_parser(
        "rebuild-search",
        help="rebuild the search projection from the records, in spatial order",
    ).set_defaults(handler=cmd_db_rebuild_search)
    down = db.add_parser("downgrade", help="migrate down to a revision ('base' drops all)")
    down.add_argument("revision")
    down.set_defaults(handler=cmd_db_downgrade)

    demo = commands.add_parser("demo", help="synthetic demo data").add_subparsers(
        dest="demo", required=True
    )
    load = demo.add_parser("load", help="load demo data into an empty directory")
    load.add_argument("--therapists", type=int, default=5000)
    load.add_argument("--seed", type=int, default=20261127)
    load.set_defaults(handler=cmd_demo_load)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys", required=True)
    create = keys.add_parser("create", help="issue a key; it is printed once, on the last line")
    create.add_argument("--role", choices=[r.value for r in Role], required=True)
    create.add_argument("--payer", type=int, help="the payer id a payer key manages")
    create.add_argument("--name", help="a label to recognise the key by")
    create.set_defaults(handler=cmd_keys_create)
    keys.add_parser("list", help="list keys (prefixes only)").set_defaults(handler=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=cmd_keys_revoke)

    importing = commands.add_parser(
        "import", help="import a roster file in this process (progress bar, summary)"
    )
    importing.add_argument("file")
    importing.add_argument(
        "--format", required=True, choices=["qhp", "qhp_plans", "fhir", "nppes", "csv"]
    )
    importing.add_argument("--payer", type=int, help="the payer whose network the file lists")
    importing.add_argument("--plans", help="QHP plans.json to read with providers.json")
    importing.add_argument("--mode", choices=["replace", "merge"], default="replace")
    importing.add_argument(
        "--dry-run", action="store_true", help="check and count everything, write nothing"
    )
    importing.add_argument(
        "--on-error",
        choices=["reject", "skip"],
        default="reject",
        help="reject: one bad record rejects the file; skip: import the valid records",
    )
    importing.set_defaults(handler=cmd_import)

    worker = commands.add_parser("worker", help="run queued import jobs (SIGTERM stops it)")
    worker.add_argument("--once", action="store_true", help="run what is queued, then exit")
    worker.set_defaults(handler=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ProblemError as error:
        print(f"error: {error.detail or error.title}", file=sys.stderr)
        return 2
    except InvalidSettings as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
