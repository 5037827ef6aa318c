"""A PSP that behaves like a bank: its own service, its own book, fault knobs.

It is how users and tests see paystream survive timeouts, lost responses and
duplicate webhooks; its book is the ground truth for "never charged twice".
"""
