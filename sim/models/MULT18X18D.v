// Simulation model of the Lattice ECP5 MULT18X18D, written for this project from the
// sysDSP description (Lattice TN1267): enough to simulate what rtl/multiplier.py instantiates.
// An 18x18 multiply, signed per SIGNEDA/SIGNEDB, with optional A, B and output registers on
// CLK0 (enabled by CE0, synchronously cleared by RST0). Other clocks, the pipeline register,
// shift inputs and bypass are not modelled: a build that asks for them stops at time zero.
`default_nettype none
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTA_CE = "CE0",
    parameter REG_INPUTA_RST = "RST0", parameter REG_INPUTB_CLK = "NONE",
    parameter REG_INPUTB_CE = "CE0", parameter REG_INPUTB_RST = "RST0",
    parameter REG_INPUTC_CLK = "NONE", parameter REG_INPUTC_CE = "CE0",
    parameter REG_INPUTC_RST = "RST0", parameter REG_PIPELINE_CLK = "NONE",
    parameter REG_PIPELINE_CE = "CE0", parameter REG_PIPELINE_RST = "RST0",
    parameter REG_OUTPUT_CLK = "NONE", parameter REG_OUTPUT_CE = "CE0",
    parameter REG_OUTPUT_RST = "RST0", parameter CLK0_DIV = "ENABLED",
    parameter CLK1_DIV = "ENABLED", parameter CLK2_DIV = "ENABLED",
    parameter CLK3_DIV = "ENABLED", parameter HIGHSPEED_CLK = "NONE",
    parameter GSR = "ENABLED", parameter CAS_MATCH_REG = "FALSE",
    parameter SOURCEB_MODE = "B_SHIFT", parameter MULT_BYPASS = "DISABLED",
    parameter RESETMODE = "SYNC"
) (
    input wire A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input wire B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input wire C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input wire CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20,
        P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
    output wire SIGNEDP
);
    initial begin
        if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0")
                || (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0")
                || (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0")
                || REG_PIPELINE_CLK != "NONE" || MULT_BYPASS != "DISABLED"
                || REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_OUTPUT_CE != "CE0"
                || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0"
                || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC") begin
            $display("MULT18X18D model: unmodelled configuration");
            $finish;
        end
    end

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1,
        A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1,
        B0};
    reg [17:0] a_reg, b_reg;
    reg [35:0] p_reg;
    wire [17:0] a_used = REG_INPUTA_CLK == "NONE" ? a : a_reg;
    wire [17:0] b_used = REG_INPUTB_CLK == "NONE" ? b : b_reg;
    wire signed [18:0] a_value = {SIGNEDA & a_used[17], a_used};
    wire signed [18:0] b_value = {SIGNEDB & b_used[17], b_used};
    wire signed [37:0] product_full = a_value * b_value;
    wire [35:0] product = product_full[35:0];

    always @(posedge CLK0) begin
        if (RST0) begin
            a_reg <= 18'd0;
            b_reg <= 18'd0;
            p_reg <= 36'd0;
        end else if (CE0) begin
            a_reg <= a;
            b_reg <= b;
            p_reg <= product;
        end
    end

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
        P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} =
        REG_OUTPUT_CLK == "NONE" ? product : p_reg;
    assign SIGNEDP = SIGNEDA | SIGNEDB;
endmodule
`default_nettype wire
