"""Simulated instruments that speak their real protocols over real boundaries (TCP, pty).

Each simulator has the same module stem as its driver in ``drivers/`` and never imports it: both
are written from the manual, so a shared misreading cannot hide. Faults are scripted with
:mod:`simulators.scenario` files or set at run time.
"""
