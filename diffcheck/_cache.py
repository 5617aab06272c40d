"""JAX's persistent compilation cache, as the command line and the worker processes use it: the
folder and its bound, read from the settings, and turning the cache on or off in a process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The bound on diffcheck's own cache folder, past which JAX deletes the least recently used
# programs: generous, as one case's programs take a few hundred KB (simple_net: 250 KB).
CACHE_MAX_BYTES = 2**28


def default_compilation_cache() -> tuple[Path, int | None]:
    """The command line's compilation cache: (folder, bound in bytes or None).

    `$DIFFCHECK_CACHE_DIR`, else `$JAX_COMPILATION_CACHE_DIR`, else `<user cache folder>/diffcheck/jax`
    (platformdirs: ~/.cache/diffcheck/jax on Linux). diffcheck's own folders are bounded to
    `CACHE_MAX_BYTES`; JAX's folder has JAX's bound (`$JAX_COMPILATION_CACHE_MAX_SIZE`, none by
    default), since other JAX programs may write to it and the bound only works when every writer keeps it.
    The variables are read and validated by `diffcheck._options.settings`.
    """
    from ._options import settings

    env = settings()
    if env.cache_dir is not None:
        return env.cache_dir, CACHE_MAX_BYTES
    if env.jax_cache_dir is not None:
        return env.jax_cache_dir, env.jax_cache_max_size
    import platformdirs

    return Path(platformdirs.user_cache_dir("diffcheck")) / "jax", CACHE_MAX_BYTES


def prepare_compilation_cache(folder, max_bytes: int | None = None) -> int | None:
    """Makes `folder` and checks that it can be written to, without importing JAX; returns the
    bound to use (None where the folder already holds programs written without one). Sets the
    environment that worker processes read. Raises OSError when the folder cannot be used."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):  # writable? JAX itself would warn once per program
        pass
    if max_bytes is not None and any(_unbounded_entries(folder)):
        max_bytes = None  # JAX's eviction reads every entry's access time: it would fail, and every write with it
    # In the environment too: inherited by worker processes.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(-1 if max_bytes is None else max_bytes)
    return max_bytes


def enable_compilation_cache(folder, max_bytes: int | None = None) -> None:
    """Keeps JAX's compiled programs in `folder` across processes (JAX's persistent compilation
    cache), so that a second run of the same cases skips XLA compilation. Every program is kept,
    however quick to compile: a check compiles many small ones.

    This changes JAX's configuration for the whole process (and for the worker processes that
    `run_cases` starts from it); `check_grad` and the other checks never call it themselves.
    The command line's worker processes call it on `default_compilation_cache()` unless given `--no-cache`.

    Args:
        folder: the folder, made if missing. Compiled programs are trusted code: keep it private.
        max_bytes: past this size JAX deletes the least recently used programs. Default None: no
            bound. Bound only a folder that no unbounded process writes to; a folder that already
            holds programs written without a bound stays unbounded.

    Raises:
        OSError: the folder cannot be made or written to; the cache is then left as it was.
    """
    from . import _options

    folder = _options.cache_dir(folder, name="folder")
    max_bytes = prepare_compilation_cache(folder, max_bytes)
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", -1 if max_bytes is None else max_bytes)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # JAX opens its cache once per process: reopen it here


def _unbounded_entries(folder: Path):
    """Programs written without a bound: JAX's "<key>-cache" files lacking their "<key>-atime"."""
    for entry in folder.glob("*-cache"):
        if not entry.with_name(entry.name.removesuffix("-cache") + "-atime").exists():
            yield entry


def disable_compilation_cache() -> None:
    """Turns JAX's persistent compilation cache off in this process and its future worker processes,
    even where `$JAX_COMPILATION_CACHE_DIR` is set."""
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
