"""The PSP boundary: what paystream asks of a payment service provider, how its
answers are classified, the HTTP adapter, and the simulator service."""
