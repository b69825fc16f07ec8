"""``python`` hooks: call ``module:function`` in this process."""

from __future__ import annotations

import copy
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from portl.engine.hooks.base import Drop, HookContext, RowVerdict, SkipRow, drop_reason, hook_label
from portl.errors import HookError
from portl.spec.models import PythonHook

# Runners of different jobs (or parallel workers of one) may share a folder; the folder leaves
# sys.path when the last runner that put it there closes.
_path_lock = threading.Lock()
_path_users: dict[str, int] = {}


def _add_to_path(folder: str) -> bool:
    with _path_lock:
        if folder in _path_users:
            _path_users[folder] += 1
            return True
        if folder in sys.path:
            return False  # already there by someone else's hand; leave it alone
        sys.path.insert(0, folder)
        _path_users[folder] = 1
        return True


def _remove_from_path(folder: str) -> None:
    with _path_lock:
        _path_users[folder] -= 1
        if _path_users[folder] == 0:
            del _path_users[folder]
            if folder in sys.path:
                sys.path.remove(folder)


def describe(hook: PythonHook) -> str:
    """The plan's line: ``python: myhooks:clean_row``."""
    return f"python: {hook.function}"


class PythonCall:
    """One ``python`` hook bound to its event and position; the function is imported at once."""

    def __init__(self, hook: PythonHook, event: str, index: int, context: HookContext):
        self.hook = hook
        self.event = event
        self.label = hook_label(event, index, f"python {hook.function!r}")
        self._folder = os.path.abspath(context.base_dir)
        self._on_path = _add_to_path(self._folder)
        try:
            self.function = self._resolve()
        except BaseException:
            self.close()
            raise

    def on_event(self, payload: dict[str, Any]) -> None:
        self._call(copy.deepcopy(payload), "")

    def on_row(self, row: dict[str, Any], where: str, outcome: dict[str, Any] | None = None) -> RowVerdict:
        if self.event != "before_row":
            self._call(row, f" ({where})")
            return None
        before = _snapshot(row)
        result = self._call(row, f" ({where})")
        if result is None:
            # Changing the dict in place and returning nothing counts as a change too.
            return row if row != before else None
        if isinstance(result, Drop):
            return result
        if not isinstance(result, dict):
            raise HookError(
                f"{self.label} returned {type(result).__name__} ({where}); return a dict to change the row, "
                "None to keep it, or raise portl.SkipRow('reason') to drop it"
            )
        return result

    def close(self) -> None:
        if self._on_path:
            self._on_path = False
            _remove_from_path(self._folder)

    def _call(self, argument: dict[str, Any], suffix: str) -> Any:
        try:
            return self.function(argument)
        except SkipRow as exc:
            if self.event != "before_row":
                raise HookError(f"{self.label} raised SkipRow{suffix}, but only before_row hooks can drop rows") from exc
            return Drop(drop_reason(str(exc)))
        except Exception as exc:
            raise HookError(f"{self.label} raised {type(exc).__name__}{suffix}: {exc}") from exc

    def _resolve(self) -> Callable[[dict[str, Any]], Any]:
        module_name, _, attribute = self.hook.function.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise HookError(
                    f"{self.label}: cannot import module {module_name!r}: {exc}. It is looked for in the job "
                    f"file's folder ({self._folder}) and on the Python path"
                ) from exc
            raise HookError(f"{self.label}: importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise HookError(f"{self.label}: importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
        for part in attribute.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise HookError(
                    f"{self.label}: module {module_name!r} has no attribute {attribute!r}"
                    f" (from {getattr(sys.modules.get(module_name), '__file__', None) or module_name})"
                ) from None
        if not callable(target):
            raise HookError(f"{self.label}: {attribute!r} in module {module_name!r} is not a function")
        return target


def _snapshot(row: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough to notice in-place changes, cheap for the usual flat row."""
    return {k: copy.deepcopy(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
