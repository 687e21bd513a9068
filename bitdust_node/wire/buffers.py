"""Buffers a coder fills whole: made without the zeroing bytearray(n) does, which is wasted on them.

Zeroing is a pass over the memory (a megabyte block's parity shares, a relayed packet's ciphertext) that the coder
then overwrites entirely; a buffer from the process heap is not known to be zero, so bytearray(n) writes it.
"""

from __future__ import annotations

import ctypes
import sys

# the C API makes a bytearray of `size` bytes from NULL without writing them (Python's own resize does the same)
_from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
_from_string_and_size.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
_from_string_and_size.restype = ctypes.py_object


def unfilled(size: int) -> bytearray:
    """A bytearray of `size` bytes whose contents are whatever the memory held: for a caller that writes every one
    of them before anything reads it."""
    if not 0 <= size <= sys.maxsize:  # ctypes would cut a larger one down to its low bits
        raise ValueError(f"no buffer of {size} bytes")
    made: bytearray = _from_string_and_size(None, size)
    return made
