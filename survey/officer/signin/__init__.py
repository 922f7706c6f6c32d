"""Signing in and out: the password, the one-time code of an enrolled account, the back-off, the device cookie."""
