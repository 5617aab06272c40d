"""The built-in case library, one module per family; installed as `diffcheck.cases`."""
