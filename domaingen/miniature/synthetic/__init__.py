"""Small procedurally generated datasets that mirror the real benchmarks' layouts."""
from .diverse_weather import generate_diverse_weather

__all__ = ["generate_diverse_weather"]
