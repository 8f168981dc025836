# SPDX-License-Identifier: MIT
"""The exceptions: one class per ct_status, all subclasses of ctml.Error."""
from __future__ import annotations


class Error(Exception):
    """A failing ctml call: `status` is the ct_status name (e.g. "CT_ERR_SHAPE"),
    `code` its number, and the message is the library's ct_last_error()."""

    status: str = "CT_ERR"
    code: int = -1

    def __init__(self, message: str, status: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class InvalidArgumentError(Error, ValueError):
    """CT_ERR_INVALID_ARG: a null handle, a bad number, a malformed request."""


class ShapeError(Error, TypeError):
    """CT_ERR_SHAPE: objects do not match (dtype, role or shape), e.g. in a composition."""


class RangeError(Error, IndexError):
    """CT_ERR_RANGE: an index (token id, boundary slot) out of range."""


class NonFiniteError(Error, ArithmeticError):
    """CT_ERR_NONFINITE: NaN or Inf in an input or in the loss."""


class OutOfMemoryError(Error, MemoryError):
    """CT_ERR_NOMEM: host or device allocation failed."""


class BackendAbsentError(Error):
    """CT_ERR_BACKEND_ABSENT: the backend is unknown, not built, or has no device."""


class DeviceError(Error):
    """CT_ERR_DEVICE: a device call failed."""


class UnsupportedError(Error, NotImplementedError):
    """CT_ERR_UNSUPPORTED: the backend declares the operation unsupported."""


class FileError(Error, OSError):
    """CT_ERR_IO: a file could not be read or written."""


class StateError(Error):
    """CT_ERR_STATE: a call out of order (e.g. reverse before forward)."""


class InternalError(Error):
    """CT_ERR_INTERNAL: a broken internal invariant, a bug in ctml."""


# Indexed by ct_status (include/ctml/status.h); 0 is CT_OK.
_BY_CODE: list[type[Error]] = [Error, InvalidArgumentError, ShapeError, RangeError,
                               NonFiniteError, OutOfMemoryError, BackendAbsentError, DeviceError,
                               UnsupportedError, FileError, StateError, InternalError]


def error_class(code: int) -> type[Error]:
    """The exception class of a ct_status code."""
    return _BY_CODE[code] if 0 < code < len(_BY_CODE) else Error


def check(code: int, lib) -> None:
    """Raises the Error of a failing ct_status, with ct_last_error()'s message."""
    if code == 0:
        return
    name = (lib.ct_status_name(code) or b"CT_ERR_?").decode()
    message = (lib.ct_last_error() or b"").decode(errors="replace") or name
    raise error_class(code)(message, name, code)
