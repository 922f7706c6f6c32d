"""The SIPAS platform's web application: the only package that knows HTTP, sessions and the database."""
