"""What the app remembers between runs, typed, on top of QSettings.

Where: the platform's native store under the organisation/application names that
:func:`resnet_gui.gui.app.configure_application` sets, unless a file is given, either to the
constructor (tests) or in ``$RESNET_GUI_SETTINGS`` (an INI file: isolated runs, benchmarks).
QSettings hands values back as strings on some back ends, so every getter converts and validates.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from resnet_gui.core.explain.catalog import COLORMAPS, DEFAULT_METHOD  # torch-free

SETTINGS_ENV = "RESNET_GUI_SETTINGS"
MAX_RECENT = 10

DEFAULT_TOP_K = 5
DEFAULT_COLORMAP = COLORMAPS[0]
DEFAULT_OPACITY = 0.5


class AppSettings:
    """Typed access to the remembered values."""

    def __init__(self, path: str | Path | None = None) -> None:
        path = path or os.environ.get(SETTINGS_ENV)
        if path:
            self._qsettings = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self._qsettings = QSettings()

    @property
    def qsettings(self) -> QSettings:
        return self._qsettings

    def sync(self) -> None:
        self._qsettings.sync()

    # -- helpers -----------------------------------------------------------------------------

    def _str(self, key: str, default: str = "") -> str:
        value = self._qsettings.value(key, default)
        return value if isinstance(value, str) else default

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        try:
            value = int(self._qsettings.value(key, default))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default
        return min(max(value, low), high)

    def _float(self, key: str, default: float, low: float, high: float) -> float:
        try:
            value = float(self._qsettings.value(key, default))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default
        return min(max(value, low), high) if value == value else default

    # -- the values --------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """A registry ref (``resnet50:IMAGENET1K_V2``), ``file:<path>``, or "" for the default."""
        return self._str("model")

    @model.setter
    def model(self, value: str) -> None:
        self._qsettings.setValue("model", value)

    @property
    def device(self) -> str:
        return self._str("device", "auto") or "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._qsettings.setValue("device", value)

    @property
    def backend(self) -> str:
        """What runs the classification: a key of core's ``BACKENDS`` (``auto`` by default)."""
        from resnet_gui.core.runtime import BACKENDS

        value = self._str("backend", "auto")
        return value if value in BACKENDS else "auto"

    @backend.setter
    def backend(self, value: str) -> None:
        self._qsettings.setValue("backend", value)

    @property
    def top_k(self) -> int:
        return self._int("top_k", DEFAULT_TOP_K, 1, 100)

    @top_k.setter
    def top_k(self, value: int) -> None:
        self._qsettings.setValue("top_k", int(value))

    @property
    def method(self) -> str:
        return self._str("method", DEFAULT_METHOD) or DEFAULT_METHOD

    @method.setter
    def method(self, value: str) -> None:
        self._qsettings.setValue("method", value)

    @property
    def opacity(self) -> float:
        return self._float("opacity", DEFAULT_OPACITY, 0.0, 1.0)

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._qsettings.setValue("opacity", float(value))

    @property
    def colormap(self) -> str:
        return self._str("colormap", DEFAULT_COLORMAP) or DEFAULT_COLORMAP

    @colormap.setter
    def colormap(self, value: str) -> None:
        self._qsettings.setValue("colormap", value)

    @property
    def unsure_threshold(self) -> float | None:
        """The top probability under which a prediction is marked "not sure"; None: never chosen."""
        if not self._qsettings.contains("unsure_threshold"):
            return None
        return self._float("unsure_threshold", 0.5, 0.0, 1.0)

    @unsure_threshold.setter
    def unsure_threshold(self, value: float | None) -> None:
        if value is None:
            self._qsettings.remove("unsure_threshold")
        else:
            self._qsettings.setValue("unsure_threshold", float(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._qsettings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._qsettings.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._qsettings.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._qsettings.setValue("window/state", value)

    @property
    def last_folder(self) -> str:
        return self._str("last_folder")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._qsettings.setValue("last_folder", value)

    @property
    def recent_files(self) -> list[str]:
        value = self._qsettings.value("recent_files", [])
        if isinstance(value, str):  # one entry comes back as a plain string from INI files
            value = [value]
        if not isinstance(value, list):
            return []
        return [str(item) for item in value if isinstance(item, str) and item][:MAX_RECENT]

    def add_recent(self, paths: list[str]) -> list[str]:
        """Put ``paths`` first in the recent list (no duplicates, at most MAX_RECENT); returns it."""
        recent = [str(Path(p)) for p in paths]
        recent += [p for p in self.recent_files if p not in recent]
        recent = recent[:MAX_RECENT]
        self._qsettings.setValue("recent_files", recent)
        return recent

    def clear_recent(self) -> None:
        self._qsettings.setValue("recent_files", [])

    @property
    def allow_large_images(self) -> bool:
        """Open photos over Pillow's decompression-bomb limit (about 89 MP): the user said so once."""
        return self._str("allow_large_images", "false") == "true"

    @allow_large_images.setter
    def allow_large_images(self, value: bool) -> None:
        self._qsettings.setValue("allow_large_images", "true" if value else "false")

    # -- exporting ---------------------------------------------------------------------------

    @property
    def export_folder(self) -> str:
        return self._str("export/folder")

    @export_folder.setter
    def export_folder(self, value: str) -> None:
        self._qsettings.setValue("export/folder", value)

    @property
    def export_format(self) -> str:
        return self._str("export/format", "onnx")

    @export_format.setter
    def export_format(self, value: str) -> None:
        self._qsettings.setValue("export/format", value)

    # -- the fine-tuning wizard --------------------------------------------------------------

    @property
    def finetune_folder(self) -> str:
        return self._str("finetune/folder")

    @finetune_folder.setter
    def finetune_folder(self, value: str) -> None:
        self._qsettings.setValue("finetune/folder", value)

    @property
    def finetune_base(self) -> str:
        return self._str("finetune/base")

    @finetune_base.setter
    def finetune_base(self, value: str) -> None:
        self._qsettings.setValue("finetune/base", value)

    @property
    def finetune_mode(self) -> str:
        mode = self._str("finetune/mode", "head")
        from resnet_gui.core.modes import MODE_KEYS

        return mode if mode in MODE_KEYS else "head"

    @finetune_mode.setter
    def finetune_mode(self, value: str) -> None:
        self._qsettings.setValue("finetune/mode", value)
