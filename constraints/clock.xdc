# int8attn units: clock constraint for AMD/Xilinx Vivado (7 series and later).
# 5.000 ns = 200 MHz; change the period to your target. Add PACKAGE_PIN/IOSTANDARD lines for your board,
# or synthesize out of context (set_property HD.CLK_SRC / -mode out_of_context) to time the core alone.
create_clock -name clk -period 5.000 [get_ports clk]
