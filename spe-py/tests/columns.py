"""Column names shared by the tests: what ``SyntheticGenerator.arrays`` returns besides ``time``."""

FLOAT_COLUMNS = [
    "temperature_2m",
    "shortwave_radiation",
    "cloud_cover",
    "wind_speed_10m",
    "demand_mw",
    "solar_mw",
    "wind_mw",
    "other_mw",
    "imports_mw",
]
