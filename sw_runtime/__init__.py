"""The NPU's software side: golden models now; device backends, assembler and compiler next."""
