// The NPU top in a plain C++ clock loop: the ceiling of Verilator's speed, no Python.
//
// usage: npu_raw <image> <program_addr> <instruction_count> <dump_list> <dump_out> [repeats]
//
// <image> is DRAM contents as records (u64 address, u64 length, bytes). The firmware driver
// (firmware/src/npu_driver.c) runs the program through AXI4-Lite transactions on the
// Verilated model; DRAM is an AXI4 subordinate in this file (in order, always ready, one
// beat per cycle, SLVERR beyond the end). Afterwards the byte ranges listed in <dump_list>
// (records of u64 address, u64 length) are written to <dump_out>, and one JSON line with the
// cycles, the wall time and the performance counters goes to stdout. With [repeats], the
// program runs that many times in a row (the timing covers all of them).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <vector>

#include "Vnpu_top.h"
#include "verilated.h"

extern "C" {
#include "npu_driver.h"
}

// Ports m_axi__x and s_axil__x: Verilator spells a double underscore "___05F".
#define AXI(member) m_axi___05F##member
#define AXIL(member) s_axil___05F##member

namespace {

// From the build: the configuration's bus and the runtime's DRAM size.
const uint64_t DRAM_BYTES = NPU_DRAM_BYTES;
const unsigned BEAT_BYTES = NPU_BUS_BYTES;
const unsigned OKAY = 0, SLVERR = 2;

struct Burst {
    uint32_t id;
    uint64_t addr;
    uint32_t beats;
    bool in_range;
};

class Testbench {
  public:
    Testbench() : top_(new Vnpu_top), dram_(DRAM_BYTES, 0) {}

    std::vector<uint8_t>& dram() { return dram_; }
    uint64_t cycles() const { return cycles_; }

    void reset() {
        top_->rst = 1;
        for (int i = 0; i < 4; i++) cycle();
        top_->rst = 0;
    }

    // One clock: drive this cycle's inputs, see which handshakes happen at the edge, clock.
    void cycle() {
        top_->clk = 0;
        top_->eval();
        drive_dram();
        top_->eval();
        bool ar = top_->AXI(arvalid), aw = top_->AXI(awvalid);
        bool r = top_->AXI(rvalid) && top_->AXI(rready);
        bool w = top_->AXI(wready) && top_->AXI(wvalid);
        bool b = top_->AXI(bvalid) && top_->AXI(bready);
        Burst read{top_->AXI(arid), top_->AXI(araddr), top_->AXI(arlen) + 1u, false};
        Burst write{top_->AXI(awid), top_->AXI(awaddr), top_->AXI(awlen) + 1u, false};
        uint64_t wdata = top_->AXI(wdata);
        uint32_t wstrb = top_->AXI(wstrb);
        axil_ar_ = top_->AXIL(arready);
        axil_r_ = top_->AXIL(rvalid);
        axil_rdata_ = top_->AXIL(rdata);
        axil_aw_ = top_->AXIL(awready);
        axil_w_ = top_->AXIL(wready);
        axil_b_ = top_->AXIL(bvalid);
        top_->clk = 1;
        top_->eval();
        cycles_++;
        if (ar) {
            read.in_range = in_range(read);
            reads_.push_back(read);
        }
        if (r && --reads_.front().beats == 0) reads_.pop_front();
        else if (r) reads_.front().addr += BEAT_BYTES;
        if (aw) {
            write.in_range = in_range(write);
            writes_.push_back(write);
        }
        if (w) {
            Burst& burst = writes_.front();
            if (burst.in_range)
                for (unsigned lane = 0; lane < BEAT_BYTES; lane++)
                    if (wstrb >> lane & 1) dram_[burst.addr + lane] = wdata >> (8 * lane);
            burst.addr += BEAT_BYTES;
            if (--burst.beats == 0) {
                responses_.push_back(burst);
                writes_.pop_front();
            }
        }
        if (b) responses_.pop_front();
    }

    uint32_t read32(uint32_t offset) {
        top_->AXIL(araddr) = offset;
        top_->AXIL(arvalid) = 1;
        do cycle(); while (!axil_ar_);
        top_->AXIL(arvalid) = 0;
        top_->AXIL(rready) = 1;
        do cycle(); while (!axil_r_);
        top_->AXIL(rready) = 0;
        return axil_rdata_;
    }

    void write32(uint32_t offset, uint32_t value) {
        top_->AXIL(awaddr) = offset;
        top_->AXIL(wdata) = value;
        top_->AXIL(wstrb) = 0xF;
        top_->AXIL(awvalid) = top_->AXIL(wvalid) = 1;
        while (top_->AXIL(awvalid) || top_->AXIL(wvalid)) {
            cycle();
            if (axil_aw_) top_->AXIL(awvalid) = 0;
            if (axil_w_) top_->AXIL(wvalid) = 0;
        }
        top_->AXIL(bready) = 1;
        do cycle(); while (!axil_b_);
        top_->AXIL(bready) = 0;
    }

  private:
    bool in_range(const Burst& burst) const {
        return burst.addr + uint64_t(burst.beats) * BEAT_BYTES <= dram_.size();
    }

    void drive_dram() {
        top_->AXI(arready) = 1;
        top_->AXI(awready) = 1;
        top_->AXI(rvalid) = !reads_.empty();
        if (!reads_.empty()) {
            const Burst& burst = reads_.front();
            uint64_t data = 0;
            if (burst.in_range)
                for (unsigned lane = 0; lane < BEAT_BYTES; lane++)
                    data |= uint64_t(dram_[burst.addr + lane]) << (8 * lane);
            top_->AXI(rid) = burst.id;
            top_->AXI(rdata) = data;
            top_->AXI(rresp) = burst.in_range ? OKAY : SLVERR;
            top_->AXI(rlast) = burst.beats == 1;
        }
        top_->AXI(wready) = !writes_.empty();
        top_->AXI(bvalid) = !responses_.empty();
        if (!responses_.empty()) {
            top_->AXI(bid) = responses_.front().id;
            top_->AXI(bresp) = responses_.front().in_range ? OKAY : SLVERR;
        }
    }

    std::unique_ptr<Vnpu_top> top_;
    std::vector<uint8_t> dram_;
    std::deque<Burst> reads_, writes_, responses_;
    uint64_t cycles_ = 0;
    bool axil_ar_ = false, axil_r_ = false, axil_aw_ = false, axil_w_ = false, axil_b_ = false;
    uint32_t axil_rdata_ = 0;
};

uint32_t bus_read32(void* context, uint32_t offset) {
    return static_cast<Testbench*>(context)->read32(offset);
}

void bus_write32(void* context, uint32_t offset, uint32_t value) {
    static_cast<Testbench*>(context)->write32(offset, value);
}

FILE* open_or_die(const char* path, const char* mode) {
    FILE* file = std::fopen(path, mode);
    if (!file) {
        std::fprintf(stderr, "npu_raw: cannot open %s\n", path);
        std::exit(2);
    }
    return file;
}

bool read_range(FILE* file, uint64_t* addr, uint64_t* length) {
    return std::fread(addr, 8, 1, file) == 1 && std::fread(length, 8, 1, file) == 1;
}

void check_range(uint64_t addr, uint64_t length, const char* what) {
    if (addr + length > DRAM_BYTES) {
        std::fprintf(stderr, "npu_raw: %s range %#llx+%#llx is outside DRAM\n", what,
                     (unsigned long long)addr, (unsigned long long)length);
        std::exit(2);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6 && argc != 7) {
        std::fprintf(stderr, "usage: %s image program_addr count dump_list dump_out [repeats]\n",
                     argv[0]);
        return 2;
    }
    Verilated::commandArgs(argc, argv);
    Testbench tb;
    FILE* image = open_or_die(argv[1], "rb");
    uint64_t addr, length;
    while (read_range(image, &addr, &length)) {
        check_range(addr, length, "image");
        if (std::fread(tb.dram().data() + addr, 1, length, image) != length) {
            std::fprintf(stderr, "npu_raw: %s is truncated\n", argv[1]);
            return 2;
        }
    }
    std::fclose(image);

    tb.reset();
    npu_t npu;
    npu_bus_t bus = {bus_read32, bus_write32, &tb};
    if (npu_init(&npu, bus) != NPU_OK) {
        std::fprintf(stderr, "npu_raw: the ID register does not read NPU0\n");
        return 1;
    }
    uint64_t start_cycle = tb.cycles();
    auto started = std::chrono::steady_clock::now();
    unsigned long repeats = argc == 7 ? std::strtoul(argv[6], nullptr, 0) : 1;
    npu_status_t status = NPU_OK;
    for (unsigned long run = 0; run < repeats && status == NPU_OK; run++)
        status = npu_run(&npu, std::strtoul(argv[2], nullptr, 0),
                         std::strtoul(argv[3], nullptr, 0), 0xFFFFFFFFu);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    uint64_t cycles = tb.cycles() - start_cycle;
    npu_counters_t counters;
    npu_read_counters(&npu, &counters);

    FILE* list = open_or_die(argv[4], "rb");
    FILE* out = open_or_die(argv[5], "wb");
    while (read_range(list, &addr, &length)) {
        check_range(addr, length, "dump");
        std::fwrite(tb.dram().data() + addr, 1, length, out);
    }
    std::fclose(list);
    std::fclose(out);

    std::printf("{\"status\": %d, \"error_code\": %u, \"error_index\": %u, "
                "\"repeats\": %lu, \"sim_cycles\": %llu, \"wall_seconds\": %.6f, \"cycles\": %u, "
                "\"array_active\": %u, \"bytes_read\": %u, \"bytes_written\": %u}\n",
                int(status), npu.error_code, npu.error_index, repeats, (unsigned long long)cycles,
                seconds, counters.cycles, counters.array_active, counters.bytes_read,
                counters.bytes_written);
    return status == NPU_OK ? 0 : 1;
}
