"""The local stack: real Postgres and Redis servers on this machine, and the
paystream processes, started and stopped together (`paystream up`, the tests)."""
