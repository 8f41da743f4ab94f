"""The engine of ResNet GUI. Nothing under ``core`` imports Qt: the GUI and the CLI both
sit on top of it and receive plain dataclasses and numpy arrays."""
