"""The database a command uses: named on stderr, never created by a command that only reads.

Every command that opens the store first says which one, on stderr, password masked::

    steadyvoice: using database sqlite:////srv/steadyvoice/steadyvoice.db

``create=False`` (``keys list``, ``voices list``, ``verify``, ``slo report``, ``synth`` with a
voice profile, and ``keys revoke``, ``voices rm``, ``voices reanalyse``, which change only what
is already there) opens only a database that exists with this version's schema, and writes
nothing to get there: no file, no data dir, no migration. Anything else is ``no_database`` or
``schema_not_current`` (an older schema is upgraded by ``steadyvoice serve``). ``create=True``
(``keys create``, ``voices add``) makes the data dir and the database if need be and migrates
them, as ``serve`` does at start.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

from steadyvoice import __version__
from steadyvoice.errors import NoDatabase, SchemaNotCurrent, StoreUnavailable
from steadyvoice.jobs.database import schema_status, shown_url, sqlite_file
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings, prepare_data_dir

WHERE = "set STEADYVOICE_DATA_DIR (or STEADYVOICE_DATABASE_URL) to the service's data directory"
WHICH = "set STEADYVOICE_DATABASE_URL to the service's database"


def announce(settings: Settings) -> str:
    """Say on stderr which database this command uses; return its URL as shown."""
    shown = shown_url(settings.resolved_database_url)
    print(f"steadyvoice: using database {shown}", file=sys.stderr)
    return shown


def open_store(settings: Settings, *, create: bool) -> JobStore:
    """The job store the settings name, ready to use; see the module's docstring."""
    url = settings.resolved_database_url
    shown = announce(settings)
    if create:
        prepare_data_dir(settings)
    else:
        path = sqlite_file(url)
        if path is not None and not path.is_file():  # connecting would create it
            raise NoDatabase(f"no database at {path}; {WHERE}", path=str(path))
    store = JobStore.from_url(url, settings.data_dir, settings.database)
    try:
        _check_schema(store, shown, create, WHERE if url.startswith("sqlite") else WHICH)
        if create:
            store.migrate()
    except OperationalError as exc:
        store.engine.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise StoreUnavailable(f"cannot use the database at {shown}: {reason}") from None
    except BaseException:
        store.engine.dispose()
        raise
    return store


@contextmanager
def opened_store(settings: Settings, *, create: bool) -> Iterator[JobStore]:
    """:func:`open_store`, its connections closed on the way out."""
    store = open_store(settings, create=create)
    try:
        yield store
    finally:
        store.engine.dispose()


def _check_schema(store: JobStore, shown: str, create: bool, hint: str) -> None:
    status = schema_status(store.engine)
    if status == "newer":
        raise SchemaNotCurrent(
            f"the database at {shown} has a newer schema than steadyvoice {__version__} knows; "
            "use the steadyvoice version that serves it"
        )
    if create or status == "current":
        return
    if status == "missing":
        raise NoDatabase(f"no steadyvoice database at {shown}; {hint}")
    raise SchemaNotCurrent(
        f"the database at {shown} has an older schema; `steadyvoice serve` upgrades it "
        "(commands that only read never change it)"
    )
