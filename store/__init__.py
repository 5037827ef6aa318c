"""Postgres: migrations, pools and repositories whose updates are named for intent.

Only this package sees psycopg errors; it translates them at its edge.
"""
