"""app/memory.py: the malloc arena cap a server process sets for itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from app import memory


def _in_a_fresh_process(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cap_is_set_where_glibc_is():
    assert _in_a_fresh_process(
        "from app import memory; print(memory.limit_malloc_arenas())", {}
    ) == ("True")


def test_an_explicit_malloc_arena_max_wins():
    out = _in_a_fresh_process(
        "from app import memory; print(memory.limit_malloc_arenas())", {"MALLOC_ARENA_MAX": "4"}
    )
    assert out == "False"


def test_no_libc_is_no_error(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(memory.ctypes.util, "find_library", lambda name: None)
    assert memory.limit_malloc_arenas() is False


def test_objects_alive_after_startup_are_frozen_out_of_collections():
    out = _in_a_fresh_process(
        """
        import gc
        from app import memory
        before = gc.get_freeze_count()
        frozen = memory.freeze_startup_objects()
        again = memory.freeze_startup_objects()
        print(before == 0, frozen > 1000, gc.get_freeze_count() == frozen, again == 0)
        gc.unfreeze()
        """,
        {},
    )
    assert out == "True True True True"
