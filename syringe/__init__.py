"""Syringe: lesson orchestration for hands-on network labs."""

__version__ = "0.1.0"
