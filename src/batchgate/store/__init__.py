"""Persistence of metadata behind one narrow protocol; adapters keep their SQL visible."""
