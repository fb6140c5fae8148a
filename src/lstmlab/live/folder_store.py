"""A model folder's state store, opened: its own SQLite file, or a PostgreSQL store seeded from it.

The folder (``lstmlab.model_folder``) says where its store is and which model it belongs to
(``folder_store``); this module picks the store class and opens it, so that the folder
imports no store. ``Forecaster.load``, ``lstmlab observe`` and the service open a folder's
store here.
"""

import os

from lstmlab.live.state_store import SeriesStore
from lstmlab.live.stores import StateStore
from lstmlab.model_folder import CONFIG_FILE, ModelFolderError, folder_store

__all__ = ["POSTGRES_SCHEMES", "open_store"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(
    path: str | os.PathLike[str],
    *,
    durability: str = "process",
    background_checkpoint: bool = False,
    url: str | None = None,
    max_series: int | None = None,
) -> StateStore:
    """Open a model folder's state store, bound to the folder's model.

    Args:
        path: the model folder.
        durability: see ``SeriesStore``.
        background_checkpoint: see ``SeriesStore``.
        url: ``None`` for the folder's own SQLite store, or ``"postgresql://..."`` for a
            PostgreSQL store shared by several processes or machines
            (``lstmlab.live.postgres_store.PostgresStore``), bound to the same model. A new
            PostgreSQL store starts with a copy of the folder's own store (the trained
            series' states and logs), made once by the first worker (``PostgresStore.seed``).
        max_series: the most series the store may hold (``SeriesLimitError`` beyond it),
            or ``None``.

    Returns:
        The open store (a ``SeriesStore``, or a ``PostgresStore`` for a ``url``); close it
        when done.

    Raises:
        ModelFolderError: the folder cannot be read, or its store is missing.
        ValueError: ``url`` is not a ``postgresql://`` URL.
    """
    if url is not None and (not isinstance(url, str) or not url.startswith(POSTGRES_SCHEMES)):
        raise ValueError(
            f"store URL {url!r} is not supported; pass a PostgreSQL URL "
            "(postgresql://user@host:5432/database), or none for the model folder's own "
            "SQLite store"
        )
    where = folder_store(path)
    if url is not None:
        try:
            from lstmlab.live.postgres_store import PostgresStore

            shared = PostgresStore(url, model=where.model, max_series=max_series)
        except ImportError as error:  # psycopg is missing: the constructor says what to install
            raise ValueError(
                f"a PostgreSQL store needs lstmlab.live.postgres_store and its driver ({error}); "
                "install lstmlab with PostgreSQL support, or omit the URL for the SQLite store"
            ) from None
        try:
            # a new shared store starts from the trained series (their warm-started states
            # and logs), as the folder's own store does: copied once, by the first worker
            if where.path.exists() and not shared.seeded:  # once seeded, the file is not opened
                with SeriesStore(where.path, model=where.model) as source:
                    shared.seed(source)
        except BaseException:
            shared.close()
            raise
        return shared
    if not where.path.exists():
        raise ModelFolderError(
            f"model folder {path} is incomplete: its state store {where.path.name}, listed "
            f"in {CONFIG_FILE}, is missing; restore it or save the model again"
        )
    saved = where.saved_series
    return SeriesStore(
        where.path,
        model=where.model,
        durability=durability,
        background_checkpoint=background_checkpoint,
        max_series=max_series,
        # the store of a folder that was saved with series must still be one: an emptied
        # file is refused, not re-created empty
        existing=f"the model folder lists {saved} trained series" if saved else None,
    )
