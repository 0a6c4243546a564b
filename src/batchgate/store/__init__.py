"""Persistence of metadata behind role protocols (base.py); each dialect is a package whose queries.py names
its SQL, under the same names in both."""
