"""The NPU's software side: the runtime (``Npu``), compiler, assembler, device backends and
golden models."""

from .npu import BACKENDS, Npu

__all__ = ["Npu", "BACKENDS"]
