"""envbuild: pin code, data, models and the environment of an ML project in one lock."""

__version__ = "0.1.0"
