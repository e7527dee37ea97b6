/* The NPU driver: see npu_driver.h. Offsets and fields come from the generated npu_regs.h. */
#include <stddef.h>

#include "npu_driver.h"
#include "npu_regs.h"

#define REG(name) ((uint32_t)offsetof(npu_regs_t, name))
#define FIELD(word, reg, field) \
    (((word) & NPU_REGS__##reg##__##field##_bm) >> NPU_REGS__##reg##__##field##_bp)

static uint32_t rd(npu_t *npu, uint32_t offset) {
    return npu->bus.read32(npu->bus.context, offset);
}

static void wr(npu_t *npu, uint32_t offset, uint32_t value) {
    npu->bus.write32(npu->bus.context, offset, value);
}

npu_status_t npu_init(npu_t *npu, npu_bus_t bus) {
    npu->bus = bus;
    npu->error_code = npu->error_index = 0;
    if (rd(npu, REG(ID)) != NPU_REGS__ID__MAGIC_reset)
        return NPU_ERR_NOT_AN_NPU;
    uint32_t array = rd(npu, REG(CONFIG_ARRAY));
    npu->config.n = FIELD(array, CONFIG_ARRAY, N);
    npu->config.bus_bytes = FIELD(array, CONFIG_ARRAY, BUS_BYTES);
    npu->config.queue_depth = FIELD(array, CONFIG_ARRAY, QUEUE_DEPTH);
    npu->config.scratchpad_rows = rd(npu, REG(CONFIG_SCRATCHPAD));
    npu->config.accumulator_rows = rd(npu, REG(CONFIG_ACCUMULATOR));
    npu->config.quant_rows = rd(npu, REG(CONFIG_QUANT));
    return NPU_OK;
}

npu_status_t npu_start(npu_t *npu, uint32_t program_addr, uint32_t count, int irq_enable) {
    if (FIELD(rd(npu, REG(STATUS)), STATUS, BUSY))
        return NPU_ERR_BUSY;
    wr(npu, REG(INSN_BASE), program_addr);
    wr(npu, REG(INSN_COUNT), count);
    wr(npu, REG(CTRL), NPU_REGS__CTRL__START_bm |
                       (irq_enable ? NPU_REGS__CTRL__IRQ_ENABLE_bm : 0));
    return NPU_OK;
}

npu_status_t npu_soft_reset(npu_t *npu, uint32_t max_polls) {
    wr(npu, REG(CTRL), NPU_REGS__CTRL__SOFT_RESET_bm);
    for (uint32_t poll = 0; poll < max_polls; poll++)
        if (!FIELD(rd(npu, REG(STATUS)), STATUS, BUSY))
            return NPU_OK;
    return NPU_ERR_TIMEOUT;
}

npu_status_t npu_wait(npu_t *npu, uint32_t max_polls) {
    for (uint32_t poll = 0; poll < max_polls; poll++) {
        uint32_t status = rd(npu, REG(STATUS));
        if (FIELD(status, STATUS, BUSY))
            continue;
        if (FIELD(status, STATUS, ERROR)) {
            npu->error_code = FIELD(rd(npu, REG(ERROR_CODE)), ERROR_CODE, CODE);
            npu->error_index = rd(npu, REG(ERROR_INDEX));
            npu_soft_reset(npu, max_polls);
            return NPU_ERR_DEVICE;
        }
        return FIELD(status, STATUS, DONE) ? NPU_OK : NPU_ERR_NOT_DONE;
    }
    npu_soft_reset(npu, max_polls);
    return NPU_ERR_TIMEOUT;
}

npu_status_t npu_run(npu_t *npu, uint32_t program_addr, uint32_t count, uint32_t max_polls) {
    npu_status_t status = npu_start(npu, program_addr, count, 1);
    return status == NPU_OK ? npu_wait(npu, max_polls) : status;
}

void npu_read_counters(npu_t *npu, npu_counters_t *counters) {
    counters->cycles = rd(npu, REG(PERF_CYCLES));
    counters->array_active = rd(npu, REG(PERF_ARRAY_ACTIVE));
    counters->load_busy = rd(npu, REG(PERF_LOAD_BUSY));
    counters->store_busy = rd(npu, REG(PERF_STORE_BUSY));
    counters->compute_stall = rd(npu, REG(PERF_COMPUTE_STALL));
    counters->bytes_read = rd(npu, REG(PERF_BYTES_READ));
    counters->bytes_written = rd(npu, REG(PERF_BYTES_WRITTEN));
}

static uint32_t mmio_read32(void *context, uint32_t offset) {
    return ((volatile uint32_t *)context)[offset / 4];
}

static void mmio_write32(void *context, uint32_t offset, uint32_t value) {
    ((volatile uint32_t *)context)[offset / 4] = value;
}

npu_bus_t npu_mmio_bus(volatile uint32_t *base) {
    npu_bus_t bus = {mmio_read32, mmio_write32, (void *)base};
    return bus;
}
