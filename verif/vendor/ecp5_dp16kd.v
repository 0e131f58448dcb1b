// Behavioural simulation model of the Lattice ECP5 DP16KD, the 18 Kbit true dual-port block RAM (sysMEM EBR).
//
// Yosys declares this primitive only as a blackbox (share/ecp5/cells_sim.v); this model has the same ports in the
// same order and the same parameters, so the instances int8attn emits and the netlists of `synth_ecp5` simulate with
// it. Behaviour as described for the ECP5 EBR (Lattice TN1264, "ECP5 and ECP5-5G Memory Usage Guide": DP16KD ports,
// REGMODE, WRITEMODE, RESETMODE, CSDECODE) and as Yosys's block RAM mapping takes it (techlibs/lattice/brams_16kd.txt
// and brams_map_16kd.v):
//
// * 1024 words of 18 bits, both ports in 1K x 18 mode (DATA_WIDTH_A = DATA_WIDTH_B = 18): the word address is
//   AD[13:4] and AD[3:2] are ignored; in a write AD[0] enables bits 8:0 and AD[1] bits 17:9 (the byte enables).
// * INITVAL_xx holds words 16*xx to 16*xx + 15, word i at bits [20*i +: 18] (brams_map_16kd.v's init_slice).
// * Each port acts at the rising edge of its clock when CE is high and the port is selected (CS2..CS0 equal to
//   CSDECODE): with WE high it writes DI, otherwise it reads the addressed word into its output latch. During a
//   write the latch holds (WRITEMODE "NORMAL"), takes the word as written ("WRITETHROUGH") or the word before the
//   write ("READBEFOREWRITE").
// * REGMODE "NOREG": DO is the latch, one cycle after the address. "OUTREG": DO is the output register, which loads
//   the latch at each clock edge with OCE high: two cycles after the address.
// * RST clears the latch and the output register whatever CE and OCE are, at the clock edge (RESETMODE "SYNC") or at
//   once ("ASYNC"), and blocks the port's write ("rdsrst zero ungated block_wr" in brams_16kd.txt). The latches
//   and the output registers power up at 0, as after configuration.
// * The two ports at the same address at the same edge, one writing: the hardware defines no result. Here a read
//   gets the word before the write; two writes leave either word.
//
// GSR and ASYNC_RESET_RELEASE have no effect (no global set/reset in simulation; the release timing of an
// asynchronous reset is not modelled), nor do WID and the MUX parameters of the data and address pins (the pins are
// taken as they are). A configuration outside this list (another DATA_WIDTH, REGMODE, WRITEMODE, RESETMODE, CSDECODE or
// INIT_DATA, an inverted or constant clock, CE, OCE, WE, RST or CS pin) instantiates a module named after the
// unsupported setting, so elaboration stops with its name.

module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1,
        DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1,
         DOA0,

  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1,
        DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1,
         DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;

    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";

    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";

    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";

    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";

    parameter DIA17MUX = "DIA17";
    parameter DIA16MUX = "DIA16";
    parameter DIA15MUX = "DIA15";
    parameter DIA14MUX = "DIA14";
    parameter DIA13MUX = "DIA13";
    parameter DIA12MUX = "DIA12";
    parameter DIA11MUX = "DIA11";
    parameter DIA10MUX = "DIA10";
    parameter DIA9MUX = "DIA9";
    parameter DIA8MUX = "DIA8";
    parameter DIA7MUX = "DIA7";
    parameter DIA6MUX = "DIA6";
    parameter DIA5MUX = "DIA5";
    parameter DIA4MUX = "DIA4";
    parameter DIA3MUX = "DIA3";
    parameter DIA2MUX = "DIA2";
    parameter DIA1MUX = "DIA1";
    parameter DIA0MUX = "DIA0";
    parameter ADA13MUX = "ADA13";
    parameter ADA12MUX = "ADA12";
    parameter ADA11MUX = "ADA11";
    parameter ADA10MUX = "ADA10";
    parameter ADA9MUX = "ADA9";
    parameter ADA8MUX = "ADA8";
    parameter ADA7MUX = "ADA7";
    parameter ADA6MUX = "ADA6";
    parameter ADA5MUX = "ADA5";
    parameter ADA4MUX = "ADA4";
    parameter ADA3MUX = "ADA3";
    parameter ADA2MUX = "ADA2";
    parameter ADA1MUX = "ADA1";
    parameter ADA0MUX = "ADA0";
    parameter CEAMUX = "CEA";
    parameter OCEAMUX = "OCEA";
    parameter CLKAMUX = "CLKA";
    parameter WEAMUX = "WEA";
    parameter RSTAMUX = "RSTA";
    parameter CSA2MUX = "CSA2";
    parameter CSA1MUX = "CSA1";
    parameter CSA0MUX = "CSA0";
    parameter DOA17MUX = "DOA17";
    parameter DOA16MUX = "DOA16";
    parameter DOA15MUX = "DOA15";
    parameter DOA14MUX = "DOA14";
    parameter DOA13MUX = "DOA13";
    parameter DOA12MUX = "DOA12";
    parameter DOA11MUX = "DOA11";
    parameter DOA10MUX = "DOA10";
    parameter DOA9MUX = "DOA9";
    parameter DOA8MUX = "DOA8";
    parameter DOA7MUX = "DOA7";
    parameter DOA6MUX = "DOA6";
    parameter DOA5MUX = "DOA5";
    parameter DOA4MUX = "DOA4";
    parameter DOA3MUX = "DOA3";
    parameter DOA2MUX = "DOA2";
    parameter DOA1MUX = "DOA1";
    parameter DOA0MUX = "DOA0";
    parameter DIB17MUX = "DIB17";
    parameter DIB16MUX = "DIB16";
    parameter DIB15MUX = "DIB15";
    parameter DIB14MUX = "DIB14";
    parameter DIB13MUX = "DIB13";
    parameter DIB12MUX = "DIB12";
    parameter DIB11MUX = "DIB11";
    parameter DIB10MUX = "DIB10";
    parameter DIB9MUX = "DIB9";
    parameter DIB8MUX = "DIB8";
    parameter DIB7MUX = "DIB7";
    parameter DIB6MUX = "DIB6";
    parameter DIB5MUX = "DIB5";
    parameter DIB4MUX = "DIB4";
    parameter DIB3MUX = "DIB3";
    parameter DIB2MUX = "DIB2";
    parameter DIB1MUX = "DIB1";
    parameter DIB0MUX = "DIB0";
    parameter ADB13MUX = "ADB13";
    parameter ADB12MUX = "ADB12";
    parameter ADB11MUX = "ADB11";
    parameter ADB10MUX = "ADB10";
    parameter ADB9MUX = "ADB9";
    parameter ADB8MUX = "ADB8";
    parameter ADB7MUX = "ADB7";
    parameter ADB6MUX = "ADB6";
    parameter ADB5MUX = "ADB5";
    parameter ADB4MUX = "ADB4";
    parameter ADB3MUX = "ADB3";
    parameter ADB2MUX = "ADB2";
    parameter ADB1MUX = "ADB1";
    parameter ADB0MUX = "ADB0";
    parameter CEBMUX = "CEB";
    parameter OCEBMUX = "OCEB";
    parameter CLKBMUX = "CLKB";
    parameter WEBMUX = "WEB";
    parameter RSTBMUX = "RSTB";
    parameter CSB2MUX = "CSB2";
    parameter CSB1MUX = "CSB1";
    parameter CSB0MUX = "CSB0";
    parameter DOB17MUX = "DOB17";
    parameter DOB16MUX = "DOB16";
    parameter DOB15MUX = "DOB15";
    parameter DOB14MUX = "DOB14";
    parameter DOB13MUX = "DOB13";
    parameter DOB12MUX = "DOB12";
    parameter DOB11MUX = "DOB11";
    parameter DOB10MUX = "DOB10";
    parameter DOB9MUX = "DOB9";
    parameter DOB8MUX = "DOB8";
    parameter DOB7MUX = "DOB7";
    parameter DOB6MUX = "DOB6";
    parameter DOB5MUX = "DOB5";
    parameter DOB4MUX = "DOB4";
    parameter DOB3MUX = "DOB3";
    parameter DOB2MUX = "DOB2";
    parameter DOB1MUX = "DOB1";
    parameter DOB0MUX = "DOB0";

    parameter WID = 0;

    parameter GSR = "ENABLED";

    parameter INITVAL_00 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_01 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_02 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_03 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_04 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_05 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_06 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_07 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_08 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_09 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_0A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_0B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_0C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_0D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_0E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_0F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_10 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_11 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_12 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_13 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_14 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_15 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_16 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_17 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_18 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_19 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_1A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_1B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_1C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_1D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_1E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_1F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_20 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_21 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_22 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_23 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_24 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_25 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_26 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_27 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_28 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_29 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_2A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_2B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_2C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_2D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_2E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_2F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_30 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_31 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_32 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_33 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_34 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_35 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_36 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_37 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_38 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_39 = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_3A = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_3B = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_3C = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_3D = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_3E = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INITVAL_3F = 320'h00000000000000000000000000000000000000000000000000000000000000000000000000000000;
    parameter INIT_DATA = "STATIC";

    // The chip-select pattern CS2..CS0 that selects each port, -1 for an unknown CSDECODE.
    localparam integer CS_A = CSDECODE_A == "0b000" ? 0 : CSDECODE_A == "0b001" ? 1 : CSDECODE_A == "0b010" ? 2
        : CSDECODE_A == "0b011" ? 3 : CSDECODE_A == "0b100" ? 4 : CSDECODE_A == "0b101" ? 5
        : CSDECODE_A == "0b110" ? 6 : CSDECODE_A == "0b111" ? 7 : -1;
    localparam integer CS_B = CSDECODE_B == "0b000" ? 0 : CSDECODE_B == "0b001" ? 1 : CSDECODE_B == "0b010" ? 2
        : CSDECODE_B == "0b011" ? 3 : CSDECODE_B == "0b100" ? 4 : CSDECODE_B == "0b101" ? 5
        : CSDECODE_B == "0b110" ? 6 : CSDECODE_B == "0b111" ? 7 : -1;

    generate
        if (DATA_WIDTH_A != 18 || DATA_WIDTH_B != 18) begin : unsupported_data_width
            DP16KD_model_unsupported_DATA_WIDTH unsupported();
        end
        if ((REGMODE_A != "NOREG" && REGMODE_A != "OUTREG") || (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG"))
        begin : unsupported_regmode
            DP16KD_model_unsupported_REGMODE unsupported();
        end
        if ((WRITEMODE_A != "NORMAL" && WRITEMODE_A != "WRITETHROUGH" && WRITEMODE_A != "READBEFOREWRITE")
            || (WRITEMODE_B != "NORMAL" && WRITEMODE_B != "WRITETHROUGH" && WRITEMODE_B != "READBEFOREWRITE"))
        begin : unsupported_writemode
            DP16KD_model_unsupported_WRITEMODE unsupported();
        end
        if (RESETMODE != "SYNC" && RESETMODE != "ASYNC") begin : unsupported_resetmode
            DP16KD_model_unsupported_RESETMODE unsupported();
        end
        if (CS_A < 0 || CS_B < 0) begin : unsupported_csdecode
            DP16KD_model_unsupported_CSDECODE unsupported();
        end
        if (INIT_DATA != "STATIC") begin : unsupported_init_data
            DP16KD_model_unsupported_INIT_DATA unsupported();
        end
        if (CEAMUX != "CEA" || OCEAMUX != "OCEA" || WEAMUX != "WEA" || RSTAMUX != "RSTA" || CSA2MUX != "CSA2"
            || CSA1MUX != "CSA1" || CSA0MUX != "CSA0" || CEBMUX != "CEB" || OCEBMUX != "OCEB" || WEBMUX != "WEB"
            || RSTBMUX != "RSTB" || CSB2MUX != "CSB2" || CSB1MUX != "CSB1" || CSB0MUX != "CSB0")
        begin : unsupported_control_mux
            DP16KD_model_unsupported_control_MUX unsupported();
        end
        if (CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin : unsupported_clock_mux
            DP16KD_model_unsupported_CLKMUX unsupported();
        end
    endgenerate

    localparam [20479:0] INITVALS = {
        INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38,
        INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30,
        INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28,
        INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20,
        INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18,
        INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10,
        INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08,
        INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};

    /* verilator lint_off MULTIDRIVEN */
    reg [17:0] words [0:1023];
    /* verilator lint_on MULTIDRIVEN */
    integer k;
    initial
        for (k = 0; k < 1024; k = k + 1)
            words[k] = INITVALS[k * 20 +: 18];

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4,
                       DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4,
                       DIB3, DIB2, DIB1, DIB0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    // Stays 0 in RESETMODE "SYNC", so the reset then only acts at clock edges.
    wire async_rsta = RESETMODE == "ASYNC" && RSTA;
    wire async_rstb = RESETMODE == "ASYNC" && RSTB;

    reg [17:0] latch_a = 18'd0, register_a = 18'd0, latch_b = 18'd0, register_b = 18'd0;

    // Port A.
    wire [9:0] word_a = ada[13:4];
    wire [17:0] written_a = {ada[1] ? dia[17:9] : words[word_a][17:9], ada[0] ? dia[8:0] : words[word_a][8:0]};
    always @(posedge CLKA or posedge async_rsta)
        if (RSTA) begin
            latch_a <= 18'd0;
            register_a <= 18'd0;
        end else begin
            if (CEA && {CSA2, CSA1, CSA0} == CS_A) begin
                if (!WEA)
                    latch_a <= words[word_a];
                else begin
                    words[word_a] <= written_a;
                    if (WRITEMODE_A == "WRITETHROUGH")
                        latch_a <= written_a;
                    else if (WRITEMODE_A == "READBEFOREWRITE")
                        latch_a <= words[word_a];
                end
            end
            if (OCEA)
                register_a <= latch_a;
        end

    // Port B.
    wire [9:0] word_b = adb[13:4];
    wire [17:0] written_b = {adb[1] ? dib[17:9] : words[word_b][17:9], adb[0] ? dib[8:0] : words[word_b][8:0]};
    always @(posedge CLKB or posedge async_rstb)
        if (RSTB) begin
            latch_b <= 18'd0;
            register_b <= 18'd0;
        end else begin
            if (CEB && {CSB2, CSB1, CSB0} == CS_B) begin
                if (!WEB)
                    latch_b <= words[word_b];
                else begin
                    words[word_b] <= written_b;
                    if (WRITEMODE_B == "WRITETHROUGH")
                        latch_b <= written_b;
                    else if (WRITEMODE_B == "READBEFOREWRITE")
                        latch_b <= words[word_b];
                end
            end
            if (OCEB)
                register_b <= latch_b;
        end

    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2,
            DOA1, DOA0} = REGMODE_A == "OUTREG" ? register_a : latch_a;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2,
            DOB1, DOB0} = REGMODE_B == "OUTREG" ? register_b : latch_b;
endmodule
