# int8attn units: clock constraint in SDC for Intel Quartus (Timing Analyzer) and other SDC tools.
# 5.000 ns = 200 MHz; change the period to your target.
create_clock -name clk -period 5.000 [get_ports {clk}]
derive_clock_uncertainty
