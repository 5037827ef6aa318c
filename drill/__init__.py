"""Fault drills: a seeded workload of payments through a misbehaving PSP,
then checks of every money invariant against the simulator's book.
`paystream drill` runs one on a stack of its own."""
