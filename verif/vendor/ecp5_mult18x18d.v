// Behavioural simulation model of the Lattice ECP5 MULT18X18D, the 18x18 multiplier of a sysDSP slice.
//
// Yosys ships only a blackbox of this primitive (share/ecp5/cells_bb.v); this model has the same ports in the same
// order and the same parameters, so the instances int8attn emits and the netlists of `synth_ecp5` simulate with it.
// Behaviour as described for the ECP5 sysDSP (Lattice TN1267, "ECP5 and ECP5-5G sysDSP Usage Guide") and the
// ECP5 family data sheet:
//
// * Registers: the A input (with SIGNEDA), the B input (with SIGNEDB), the C input, the pipeline register (the
//   product, with SIGNEDP) and the output register. Each is absent (REG_*_CLK = "NONE") or clocked on the rising
//   edge of CLK0..CLK3 (REG_*_CLK), enabled by CE0..CE3 (REG_*_CE) and cleared by RST0..RST3 (REG_*_RST). The reset
//   wins over the clock enable; it acts at the clock edge (RESETMODE = "SYNC") or at once (RESETMODE = "ASYNC").
//   Registers power up at 0, as after configuration.
// * SIGNEDA / SIGNEDB, static or dynamic: the operand is two's complement when its flag is 1, unsigned otherwise.
//   P0..P35 is the 36-bit product; SIGNEDP = SIGNEDA | SIGNEDB after the pipeline register.
// * SOURCEA / SOURCEB (SOURCEB_MODE = "B_SHIFT"): the shift inputs SRIA / SRIB replace A / B when 1.
// * ROA and SROA are A after its input register, ROB and SROB are B after its input register, ROC is C after its
//   register.
//
// GSR (no global set/reset net exists in simulation) and CLK0_DIV..CLK3_DIV (only the HIGHSPEED mode uses the
// divided clocks) have no effect. A configuration outside this list (MULT_BYPASS = "ENABLED", SOURCEB_MODE other
// than "B_SHIFT", CAS_MATCH_REG = "TRUE", HIGHSPEED_CLK other than "NONE", an unknown clock, enable, reset or
// reset mode) instantiates a module named after the unsupported setting, so elaboration stops with its name.

module MULT18X18D(
    A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0, B17, B16, B15, B14, B13, B12,
    B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0, C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5,
    C4, C3, C2, C1, C0, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2,
    RST1, RST0, SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5,
    SRIA4, SRIA3, SRIA2, SRIA1, SRIA0, SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8,
    SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0, SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11,
    SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0, SROB17, SROB16, SROB15, SROB14,
    SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0, ROA17,
    ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
    ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1,
    ROB0, ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2,
    ROC1, ROC0, P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16,
    P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0, SIGNEDP
);
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0;
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0;
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0;
    input SIGNEDA;
    input SIGNEDB;
    input SOURCEA;
    input SOURCEB;
    input CLK3, CLK2, CLK1, CLK0;
    input CE3, CE2, CE1, CE0;
    input RST3, RST2, RST1, RST0;
    input SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6,
          SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0;
    input SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6,
          SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0;
    output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6,
           SROA5, SROA4, SROA3, SROA2, SROA1, SROA0;
    output SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6,
           SROB5, SROB4, SROB3, SROB2, SROB1, SROB0;
    output ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4,
           ROA3, ROA2, ROA1, ROA0;
    output ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4,
           ROB3, ROB2, ROB1, ROB0;
    output ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4,
           ROC3, ROC2, ROC1, ROC0;
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17,
           P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0;
    output SIGNEDP;
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    wire [3:0] clocks = {CLK3, CLK2, CLK1, CLK0};
    wire [3:0] enables = {CE3, CE2, CE1, CE0};
    wire [3:0] resets = {RST3, RST2, RST1, RST0};
    wire [17:0] a_port = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_port = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    wire [17:0] c_port = {C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0};
    wire [17:0] a_shift = {SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6,
                           SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0};
    wire [17:0] b_shift = {SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6,
                           SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0};

    generate
        if (MULT_BYPASS != "DISABLED") begin : unsupported_bypass
            MULT18X18D_model_unsupported_MULT_BYPASS unsupported();
        end
        if (SOURCEB_MODE != "B_SHIFT") begin : unsupported_sourceb_mode
            MULT18X18D_model_unsupported_SOURCEB_MODE unsupported();
        end
        if (CAS_MATCH_REG != "FALSE") begin : unsupported_cas_match_reg
            MULT18X18D_model_unsupported_CAS_MATCH_REG unsupported();
        end
        if (HIGHSPEED_CLK != "NONE") begin : unsupported_highspeed_clk
            MULT18X18D_model_unsupported_HIGHSPEED_CLK unsupported();
        end
    endgenerate

    wire [17:0] a, b, c;
    wire signeda, signedb;
    MULT18X18D_model_register #(.WIDTH(19), .CLK(REG_INPUTA_CLK), .CE(REG_INPUTA_CE), .RST(REG_INPUTA_RST),
                                .RESETMODE(RESETMODE))
        input_a (.clocks(clocks), .enables(enables), .resets(resets),
                 .d({SIGNEDA, SOURCEA ? a_shift : a_port}), .q({signeda, a}));
    MULT18X18D_model_register #(.WIDTH(19), .CLK(REG_INPUTB_CLK), .CE(REG_INPUTB_CE), .RST(REG_INPUTB_RST),
                                .RESETMODE(RESETMODE))
        input_b (.clocks(clocks), .enables(enables), .resets(resets),
                 .d({SIGNEDB, SOURCEB ? b_shift : b_port}), .q({signedb, b}));
    MULT18X18D_model_register #(.WIDTH(18), .CLK(REG_INPUTC_CLK), .CE(REG_INPUTC_CE), .RST(REG_INPUTC_RST),
                                .RESETMODE(RESETMODE))
        input_c (.clocks(clocks), .enables(enables), .resets(resets), .d(c_port), .q(c));

    // Each operand extended by its sign bit when signed, by 0 when unsigned; the 36-bit product of the extensions.
    wire signed [18:0] a_extended = {signeda & a[17], a};
    wire signed [18:0] b_extended = {signedb & b[17], b};
    wire [35:0] product = a_extended * b_extended;

    wire [35:0] pipelined, p;
    wire signedp;
    MULT18X18D_model_register #(.WIDTH(37), .CLK(REG_PIPELINE_CLK), .CE(REG_PIPELINE_CE), .RST(REG_PIPELINE_RST),
                                .RESETMODE(RESETMODE))
        pipeline (.clocks(clocks), .enables(enables), .resets(resets),
                  .d({signeda | signedb, product}), .q({signedp, pipelined}));
    MULT18X18D_model_register #(.WIDTH(36), .CLK(REG_OUTPUT_CLK), .CE(REG_OUTPUT_CE), .RST(REG_OUTPUT_RST),
                                .RESETMODE(RESETMODE))
        output_p (.clocks(clocks), .enables(enables), .resets(resets), .d(pipelined), .q(p));

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
            P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
    assign SIGNEDP = signedp;
    assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2,
            ROA1, ROA0} = a;
    assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5,
            SROA4, SROA3, SROA2, SROA1, SROA0} = a;
    assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2,
            ROB1, ROB0} = b;
    assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5,
            SROB4, SROB3, SROB2, SROB1, SROB0} = b;
    assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2,
            ROC1, ROC0} = c;
endmodule

// One register of the slice, or a wire when CLK is "NONE": clock, enable and reset picked from the four of each.
module MULT18X18D_model_register #(
    parameter WIDTH = 18,
    parameter CLK = "NONE",
    parameter CE = "CE0",
    parameter RST = "RST0",
    parameter RESETMODE = "SYNC"
) (
    input [3:0] clocks,
    input [3:0] enables,
    input [3:0] resets,
    input [WIDTH-1:0] d,
    output [WIDTH-1:0] q
);
    localparam integer CLK_INDEX = CLK == "CLK0" ? 0 : CLK == "CLK1" ? 1 : CLK == "CLK2" ? 2 : CLK == "CLK3" ? 3 : -1;
    localparam integer CE_INDEX = CE == "CE0" ? 0 : CE == "CE1" ? 1 : CE == "CE2" ? 2 : CE == "CE3" ? 3 : -1;
    localparam integer RST_INDEX = RST == "RST0" ? 0 : RST == "RST1" ? 1 : RST == "RST2" ? 2 : RST == "RST3" ? 3 : -1;

    generate
        if (CLK == "NONE") begin : wire_through
            assign q = d;
        end else if (CLK_INDEX < 0) begin : unsupported_clock
            MULT18X18D_model_unsupported_REG_CLK unsupported();
        end else if (CE_INDEX < 0) begin : unsupported_enable
            MULT18X18D_model_unsupported_REG_CE unsupported();
        end else if (RST_INDEX < 0) begin : unsupported_reset
            MULT18X18D_model_unsupported_REG_RST unsupported();
        end else begin : register
            wire clock = clocks[CLK_INDEX];
            wire enable = enables[CE_INDEX];
            wire reset = resets[RST_INDEX];
            reg [WIDTH-1:0] value = {WIDTH{1'b0}};
            assign q = value;
            if (RESETMODE == "ASYNC") begin : asynchronous_reset
                always @(posedge clock or posedge reset)
                    if (reset)
                        value <= {WIDTH{1'b0}};
                    else if (enable)
                        value <= d;
            end else if (RESETMODE == "SYNC") begin : synchronous_reset
                always @(posedge clock)
                    if (reset)
                        value <= {WIDTH{1'b0}};
                    else if (enable)
                        value <= d;
            end else begin : unsupported_resetmode
                MULT18X18D_model_unsupported_RESETMODE unsupported();
            end
        end
    endgenerate
endmodule
