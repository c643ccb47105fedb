"""Transports: open, use and close a link to an instrument, translating library errors once.

Transports know nothing of what the bytes mean. pymodbus, pyserial and pyvisa exceptions end
here, mapped onto daq/errors.py with ``raise ... from exc``.
"""
