"""powercheck: capacity and power-quality assessment of LV grid connection notifications."""

__version__ = "0.1.0"
