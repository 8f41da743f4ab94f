"""The desktop app (PySide6): widgets, a controller, and worker threads around ``resnet_gui.core``.

Layout: :mod:`~resnet_gui.gui.app` starts it; :mod:`~resnet_gui.gui.controller` owns the state
and starts the long jobs of :mod:`~resnet_gui.gui.tasks` on :mod:`~resnet_gui.gui.workers`;
:mod:`~resnet_gui.gui.main_window` and the widget modules only display what the controller
emits (numpy arrays and dataclasses, never tensors). Nothing here imports torch at module level,
so the window appears before the engine is loaded.
"""
