"""ResNet GUI: classify and explain photos with the ResNet family, on GPU or CPU."""

__version__ = "0.1.0"
