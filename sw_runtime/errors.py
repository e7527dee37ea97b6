"""The runtime's exceptions: one class per kind of problem, each message naming the culprit."""

__all__ = ["NpuError", "NpuTypeError", "NpuShapeError", "NpuValueError", "DeviceMemoryError",
           "DeviceError", "DeviceTimeout", "ProgramError", "RaceError", "DeadlockError",
           "BackendError"]


class NpuError(Exception):
    """Base class of every error the runtime raises on purpose."""


class NpuTypeError(NpuError, TypeError):
    """A tensor of the wrong dtype (e.g. float where int8 is needed)."""


class NpuShapeError(NpuError, ValueError):
    """Tensors whose shapes do not fit together, or a parameter of the wrong size."""


class NpuValueError(NpuError, ValueError):
    """A value out of its range (a zero point outside its dtype, a negative scale, ...)."""


class DeviceMemoryError(NpuError, MemoryError):
    """The tensors of an operation do not fit the device's DRAM."""


class DeviceError(NpuError):
    """The hardware stopped with an error code (the device has been recovered).

    Attributes: ``code`` (the ERROR_CODE name, e.g. ``"SRAM_RANGE"``) and ``index`` (the
    faulting instruction's index in the program).
    """

    def __init__(self, code, index, detail=""):
        self.code = code
        self.index = index
        message = f"device error {code} at instruction {index}"
        super().__init__(f"{message}: {detail}" if detail else message)


class DeviceTimeout(NpuError, TimeoutError):
    """A program did not finish in time (the device has been reset)."""


class ProgramError(NpuError):
    """A program that is wrong whatever the timing (found by the model before it runs)."""


class RaceError(ProgramError):
    """Two units touch the same memory with no dependency token ordering them."""


class DeadlockError(ProgramError):
    """Units wait for tokens that are never given: the hardware would hang."""


class BackendError(NpuError):
    """A backend could not be started or stopped working (simulator build or crash)."""
