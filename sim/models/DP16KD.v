// Simulation model of the Lattice ECP5 DP16KD, written for this project from the sysMEM
// description (Lattice TN1264): enough to simulate what rtl/block_ram.py instantiates.
// Port A writes, port B reads, both in one 1/2/4/9/18/36-bit configuration; the word address
// sits on the top address pins (ADx[13:5] at 36 bits, [13:4] at 18, ... [13:0] at 1) and, at
// 18 and 36 bits, port A's lowest two or four address pins are its byte write enables (all
// must be set). 36 bits is the pseudo dual-port mode (yosys' PDPW16KD mapping): the written
// word is {DIB, DIA}, the read word {DOB, DOA}, and both output registers must be on or off.
// Port B's read lands in the RAM's latch when CEB is high; with REGMODE_B = "OUTREG" the
// output register takes the latch when OCEB is high. A read of the word port A writes at the same edge returns
// undefined data on the device: the model returns the old word inverted, so a design that
// relied on it would fail its tests. Chip selects, resets, writes through port B, reads
// through port A and mixed widths are not modelled: a build that asks for them stops.
`default_nettype none
module DP16KD #(
    parameter DATA_WIDTH_A = 18, parameter DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG", parameter REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC", parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000", parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL", parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "ENABLED"
) (
    input wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6,
        DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2,
        ADA1, ADA0,
    input wire CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output wire DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6,
        DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
    input wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6,
        DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2,
        ADB1, ADB0,
    input wire CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6,
        DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    localparam W = DATA_WIDTH_A;
    localparam PDP = W == 36;
    localparam LOW_PIN = W == 36 ? 5 : W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
    localparam WORDS = 16384 >> LOW_PIN;
    localparam BYTE_ENABLES = W == 36 ? 4'b1111 : W == 18 ? 4'b0011 : 4'b0000;

    initial begin
        if (DATA_WIDTH_A != DATA_WIDTH_B
                || !(W == 36 || W == 18 || W == 9 || W == 4 || W == 2 || W == 1)
                || (PDP ? REGMODE_A != REGMODE_B : REGMODE_A != "NOREG")
                || !(REGMODE_B == "NOREG" || REGMODE_B == "OUTREG")
                || CSDECODE_A != "0b000" || CSDECODE_B != "0b000") begin
            $display("DP16KD model: unmodelled configuration");
            $finish;
        end
    end

    wire [13:0] addr_a = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3,
                          ADA2, ADA1, ADA0};
    wire [13:0] addr_b = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3,
                          ADB2, ADB1, ADB0};
    wire [17:0] data_a = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8,
                          DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] data_b = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8,
                          DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [35:0] data_in = PDP ? {data_b, data_a} : {18'd0, data_a};
    wire [13:0] word_a = addr_a >> LOW_PIN;
    wire [13:0] word_b = addr_b >> LOW_PIN;
    wire writing = CEA && WEA;

    reg [35:0] words [0:WORDS - 1];
    reg [35:0] latch_b = 36'd0;
    reg [35:0] register_b = 36'd0;

    always @(posedge CLKA) begin
        if ({CSA2, CSA1, CSA0} != 3'b000 || RSTA) begin
            $display("DP16KD model: chip select or reset on port A is not modelled");
            $finish;
        end
        if (writing) begin
            if ((addr_a[3:0] & BYTE_ENABLES) != BYTE_ENABLES) begin
                $display("DP16KD model: partial byte writes are not modelled");
                $finish;
            end
            words[word_a] <= data_in;
        end
    end

    always @(posedge CLKB) begin
        if ({CSB2, CSB1, CSB0} != 3'b000 || RSTB || WEB) begin
            $display("DP16KD model: chip select, reset or writes on port B are not modelled");
            $finish;
        end
        if (CEB)
            latch_b <= (writing && word_a == word_b) ? ~words[word_b] : words[word_b];
        if (OCEB)
            register_b <= latch_b;
    end

    wire [35:0] out = (REGMODE_B == "OUTREG" ? register_b : latch_b) & ((36'd1 << W) - 36'd1);
    // 36 bits: the low half on port A's outputs, the high half on port B's.
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6,
            DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = PDP ? out[35:18] : out[17:0];
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6,
            DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = PDP ? out[17:0] : 18'd0;
endmodule
