"""Postgres: migrations, pools and store functions named for intent, each
written once as the statements it runs (`store.statements`) and run on a
sync or an async connection.

Only this package sees psycopg errors; it translates them at its edge.
"""
