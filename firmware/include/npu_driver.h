/* A small driver for the NPU over its generated register map (npu_regs.h).
 *
 * The host owns DRAM: it places the program (16 bytes per instruction) and the operands,
 * then calls npu_run (or npu_start and npu_wait). Register access goes through npu_bus_t,
 * so the same driver runs on a SoC (npu_mmio_bus over the mapped registers) or against a
 * model or simulator (the tests route it to the Python instruction-level model).
 */
#ifndef NPU_DRIVER_H
#define NPU_DRIVER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t (*read32)(void *context, uint32_t offset);
    void (*write32)(void *context, uint32_t offset, uint32_t value);
    void *context;
} npu_bus_t;

typedef struct {
    uint32_t n, bus_bytes, queue_depth;
    uint32_t scratchpad_rows, accumulator_rows, quant_rows;
} npu_config_t;

typedef struct {
    uint32_t cycles, array_active, load_busy, store_busy, compute_stall;
    uint32_t bytes_read, bytes_written;
} npu_counters_t;

typedef struct {
    npu_bus_t bus;
    npu_config_t config;
    uint32_t error_code;   /* ERROR_CODE after NPU_ERR_DEVICE (see npu_regs.rdl's enum) */
    uint32_t error_index;  /* ERROR_INDEX: the faulting instruction */
} npu_t;

typedef enum {
    NPU_OK = 0,
    NPU_ERR_NOT_AN_NPU = -1,  /* ID does not read "NPU0" */
    NPU_ERR_BUSY = -2,        /* a program is already running */
    NPU_ERR_DEVICE = -3,      /* the hardware stopped with an error code (device reset) */
    NPU_ERR_TIMEOUT = -4,     /* still busy after the poll budget (device reset) */
    NPU_ERR_NOT_DONE = -5,    /* idle without done or error (e.g. soft-reset meanwhile) */
} npu_status_t;

/* Check the ID register and read the hardware configuration. */
npu_status_t npu_init(npu_t *npu, npu_bus_t bus);
/* Start the program of count instructions at DRAM address program_addr. */
npu_status_t npu_start(npu_t *npu, uint32_t program_addr, uint32_t count, int irq_enable);
/* Poll STATUS until the program ends, at most max_polls times. */
npu_status_t npu_wait(npu_t *npu, uint32_t max_polls);
/* npu_start + npu_wait. */
npu_status_t npu_run(npu_t *npu, uint32_t program_addr, uint32_t count, uint32_t max_polls);
/* Stop whatever runs, drain the bus and clear the status. */
npu_status_t npu_soft_reset(npu_t *npu, uint32_t max_polls);
void npu_read_counters(npu_t *npu, npu_counters_t *counters);
/* A bus over memory-mapped registers (a SoC's view of the AXI4-Lite block). */
npu_bus_t npu_mmio_bus(volatile uint32_t *base);

#ifdef __cplusplus
}
#endif

#endif /* NPU_DRIVER_H */
