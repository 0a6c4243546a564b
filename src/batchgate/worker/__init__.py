"""Claim -> execute -> record; leases and heartbeats; validation, finalization, expiry and recovery."""
