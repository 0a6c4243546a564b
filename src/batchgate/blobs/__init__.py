"""File bytes behind one narrow protocol."""
