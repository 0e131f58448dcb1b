"""Block memories with registered outputs: a read-only :class:`Rom` and a simple dual-port :class:`Ram`.

Both read in two clock-enabled stages, the block RAM's own read and an output register, so no fabric path starts
with the slow clock-to-out of a block RAM read (5.8 ns for an ECP5 ``DP16KD`` without its output register). On
``ecp5`` they instantiate ``DP16KD`` blocks in 1K × 18 mode with the output register (``REGMODE "OUTREG"``); on
the other targets they are an :class:`amaranth.lib.memory.Memory` with a synchronous read port and a register after
it, which vendor tools map to block RAM and its output register, or absorb into LUT RAM.
"""

from collections.abc import Sequence

from amaranth import ClockSignal, Const, Module, Mux, Signal, Value, unsigned
from amaranth.hdl import Instance
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from int8attn.hdl.pipeline import check_target, delay

LATENCY = 2
"""Enabled clock edges from an address to its data: the block's read and its output register."""
BLOCK_DEPTH = 1024
BLOCK_WIDTH = 18
BYTE_BITS = 9
"""Bits a ``DP16KD`` byte enable writes in 1K × 18 mode."""
"""Words and word width of a ``DP16KD`` in 1K × 18 mode."""
BLOCK_PORTS = 2
"""Ports of a ``DP16KD`` (A and B): a :class:`Rom` reads through both."""
INITVAL_WORDS = 16
INITVAL_WORD_BITS = 20
"""Words of an ``INITVAL_xx`` parameter and the bits each takes (18 data bits, 2 unused)."""
_WORD_ADDRESS_LSB = 4
"""In 1K × 18 mode the word address is on ``AD[13:4]``; ``AD[1:0]`` are the write byte enables."""


def _address_bits(depth: int) -> int:
    return max((depth - 1).bit_length(), 1)


def initvals(words: Sequence[int]) -> dict[str, int]:
    """The ``INITVAL_00`` … ``INITVAL_3F`` parameters of a ``DP16KD`` in 1K × 18 mode holding ``words`` (at most
    1024 values of 18 bits) from address 0, laid out as Yosys's ``brams_map_16kd.v`` does: word ``16·xx + i`` at
    bits ``[20·i +: 18]`` of ``INITVAL_xx``; missing words are 0."""
    values = {}
    for index in range(BLOCK_DEPTH // INITVAL_WORDS):
        chunk = words[index * INITVAL_WORDS:(index + 1) * INITVAL_WORDS]
        values[f"INITVAL_{index:02X}"] = sum(word << (i * INITVAL_WORD_BITS) for i, word in enumerate(chunk))
    return values


def _dp16kd_port(side: str, *, clock_enable: Value, output_enable: Value, write_enable: Value, address: Value,
                 byte_enables: int | Value, write_data: Value | None, read_data: Value | None) -> dict:
    """The ``Instance`` arguments of one ``DP16KD`` port (``side`` ``"A"`` or ``"B"``) in 1K × 18 mode: the word
    address on ``AD[13:4]``, ``byte_enables`` on ``AD[1:0]``, chip selects and reset low."""
    zero = Const(0)
    enables = Const(byte_enables, 2) if isinstance(byte_enables, int) else Value.cast(byte_enables)
    ports = {
        f"i_CLK{side}": ClockSignal(), f"i_CE{side}": clock_enable, f"i_OCE{side}": output_enable,
        f"i_WE{side}": write_enable, f"i_RST{side}": zero,
        **{f"i_CS{side}{k}": zero for k in range(3)},
        **{f"i_AD{side}{k}": enables[k] if k < len(enables) else zero for k in range(_WORD_ADDRESS_LSB)},
        **{f"i_AD{side}{_WORD_ADDRESS_LSB + k}": address[k] if k < len(address) else zero
           for k in range(14 - _WORD_ADDRESS_LSB)},
        **{f"i_DI{side}{k}": write_data[k] if write_data is not None and k < len(write_data) else zero
           for k in range(BLOCK_WIDTH)},
    }
    if read_data is not None:
        ports |= {f"o_DO{side}{k}": read_data[k] for k in range(len(read_data))}
    return ports


def _dp16kd(a: dict, b: dict, *, regmode_a: str, regmode_b: str, init: Sequence[int] = ()) -> Instance:
    return Instance(
        "DP16KD",
        p_DATA_WIDTH_A=BLOCK_WIDTH, p_DATA_WIDTH_B=BLOCK_WIDTH,
        p_REGMODE_A=regmode_a, p_REGMODE_B=regmode_b,
        p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_RESETMODE="SYNC",
        p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
        **{f"p_{name}": Const(value, INITVAL_WORDS * INITVAL_WORD_BITS) for name, value in initvals(init).items()},
        **a, **b,
    )


def _slices(width: int) -> list[tuple[int, int]]:
    """``(offset, width)`` of the ≤ 18-bit slices a word of ``width`` bits is split into, one block each."""
    return [(offset, min(BLOCK_WIDTH, width - offset)) for offset in range(0, width, BLOCK_WIDTH)]


def _registered_read(m: Module, read: memory.ReadPort, enable: Value, output: Value, name: str) -> None:
    """``output`` = ``read.data`` registered while ``enable``: the second read stage."""
    register = Signal(len(output), name=name, reset_less=True)
    with m.If(enable):
        m.d.sync += register.eq(read.data)
    m.d.comb += output.eq(register)


class Rom(wiring.Component):
    """Read-only memory of ``table`` with ``ports`` independent read ports and registered outputs.

    Targets:

    * ``ecp5``: ``DP16KD`` blocks in 1K × 18 mode, ``REGMODE "OUTREG"``, ``CE`` and ``OCE`` from ``en``, ``RST`` low;
      ``INITVAL_xx`` from the table (:func:`initvals`). Each pair of ports shares blocks through the block's ports A
      and B; words wider than 18 bits are split across blocks side by side. A table of more than 1024 words takes
      the generic form instead.
    * ``generic``, ``ice40``, ``xc7``: an :class:`amaranth.lib.memory.Memory` with a synchronous read port per port,
      each followed by a register, all enabled by ``en``. On ``ice40`` the memory carries ``rom_style = "block"``:
      Yosys would build a small table from 4-input LUTs several levels deep (17.5 ns for a 64-word reciprocal table
      of the reduced ``lut`` softmax), where an ``SB_RAM40_4K`` read goes straight into the output register.

    The table is padded with zeros to ``2**address_bits`` words, so addresses at or beyond ``len(table)`` read 0 on
    every target. Nothing is reset (the ``DP16KD`` ``RST`` is low): ``data`` is undefined until two enabled cycles
    have passed.

    Parameters
    ----------
    table : sequence of int
        Contents, at least one word, each in ``0..2**width − 1``.
    width : int
        Word width, ≥ 1.
    ports : int
        Read ports, ≥ 1.
    target : str
        One of :data:`~int8attn.golden.params.TARGETS`.

    Attributes
    ----------
    table : list of int
    width, ports, address_bits : int
    target : str

    Members
    -------
    en : In(1, init=1)
        Clock enable of every read port's read and output register: while it is low the outputs hold.
    addr : In(ArrayLayout(unsigned(address_bits), ports))
        Address of each port.
    data : Out(ArrayLayout(unsigned(width), ports))
        ``table[addr]`` of each port, :attr:`latency` enabled cycles after ``addr``.
    """

    def __init__(self, table: Sequence[int], width: int, *, ports: int = 1, target: str = "generic"):
        self.table = [int(value) for value in table]
        if not self.table:
            raise ValueError("table must hold at least one word")
        if width < 1:
            raise ValueError(f"width must be ≥ 1, not {width}")
        outside = [value for value in self.table if not 0 <= value < 1 << width]
        if outside:
            raise ValueError(f"table words must lie in 0..2**{width} − 1 (width {width}); {outside[0]} does not")
        if ports < 1:
            raise ValueError(f"ports must be ≥ 1, not {ports}")
        self.width = width
        self.ports = ports
        self.target = check_target(target)
        self.address_bits = _address_bits(len(self.table))
        super().__init__({
            "en": In(1, init=1),
            "addr": In(data.ArrayLayout(unsigned(self.address_bits), ports)),
            "data": Out(data.ArrayLayout(unsigned(width), ports)),
        })

    @property
    def latency(self) -> int:
        """Enabled cycles from ``addr`` to ``data``: 2 on every target."""
        return LATENCY

    @property
    def blocks(self) -> int:
        """``DP16KD`` blocks instantiated (``ecp5`` up to 1024 words): one per 18-bit slice of a word and pair of
        ports; else 0."""
        if self.target != "ecp5" or len(self.table) > BLOCK_DEPTH:
            return 0
        return -(-self.ports // BLOCK_PORTS) * len(_slices(self.width))

    def elaborate(self, platform):
        m = Module()
        if self.blocks:
            self._elaborate_dp16kd(m)
            return m
        padded = self.table + [0] * ((1 << self.address_bits) - len(self.table))
        attrs = {"rom_style": "block"} if self.target == "ice40" else None
        m.submodules.memory = rom = memory.Memory(shape=unsigned(self.width), depth=len(padded), init=padded,
                                                  attrs=attrs)
        for port in range(self.ports):
            read = rom.read_port()
            m.d.comb += [read.en.eq(self.en), read.addr.eq(self.addr[port])]
            _registered_read(m, read, self.en, self.data[port], f"data{port}")
        return m

    def _elaborate_dp16kd(self, m: Module) -> None:
        for group, first in enumerate(range(0, self.ports, BLOCK_PORTS)):
            pair = range(first, min(first + BLOCK_PORTS, self.ports))
            for offset, width in _slices(self.width):
                sides = {}
                for side, port in zip("AB", pair, strict=False):
                    read_data = Signal(width, name=f"rom{port}_{offset}")
                    sides[side] = _dp16kd_port(side, clock_enable=self.en, output_enable=self.en,
                                               write_enable=Const(0), address=self.addr[port], byte_enables=0,
                                               write_data=None, read_data=read_data)
                    m.d.comb += self.data[port][offset:offset + width].eq(read_data)
                regmode_b = "OUTREG" if "B" in sides else "NOREG"
                if "B" not in sides:
                    off = Const(0)
                    sides["B"] = _dp16kd_port("B", clock_enable=off, output_enable=off, write_enable=off, address=off,
                                              byte_enables=0, write_data=None, read_data=None)
                words = [value >> offset & ((1 << width) - 1) for value in self.table]
                m.submodules[f"block{group}_{offset}"] = _dp16kd(sides["A"], sides["B"], regmode_a="OUTREG",
                                                                 regmode_b=regmode_b, init=words)


class Ram(wiring.Component):
    """Simple dual-port RAM of ``depth`` words: one write port, one read port with a registered output.

    A write takes effect at the clock edge where ``w_en`` is high. The read port reads in two stages, both enabled
    by ``r_en``. Reading an address at the edge it is written is undefined (the targets differ), as is reading an
    address at or beyond ``depth``. Unwritten words read 0. Nothing is reset (the ``DP16KD`` ``RST`` is low):
    ``r_data`` is undefined until two enabled read cycles have passed.

    Targets:

    * ``ecp5``: ``DP16KD`` blocks in 1K × 18 mode, written through port A (``WRITEMODE "NORMAL"``, ``CE = w_en``)
      and read through port B (``REGMODE "OUTREG"``, ``CE`` and ``OCE`` from ``r_en``), ``RST`` low; words wider
      than 18 bits split across blocks side by side. A RAM deeper than 1024 words, or written by lanes, takes the
      generic form instead (Yosys maps it onto the blocks and their byte enables).
    * ``generic``, ``ice40``, ``xc7``: an :class:`amaranth.lib.memory.Memory` with a write port and a synchronous
      read port followed by a register.

    Parameters
    ----------
    width : int
        Word width, ≥ 1.
    depth : int
        Words, ≥ 1.
    target : str
        One of :data:`~int8attn.golden.params.TARGETS`.
    lanes : int
        Write lanes, dividing ``width``: lane ``j`` is bits ``[j·w, (j + 1)·w)`` with ``w = width / lanes``, written
        on its own enable.

    Attributes
    ----------
    width, depth, address_bits, lanes : int
    target : str

    Members
    -------
    w_en : In(lanes)
        Write lane ``j`` of ``w_data`` to ``w_addr`` at this clock edge when bit ``j`` is high.
    w_addr : In(unsigned(address_bits))
        Address written.
    w_data : In(unsigned(width))
        Word written.
    r_en : In(1, init=1)
        Clock enable of the read and of the output register: while it is low ``r_data`` holds.
    r_addr : In(unsigned(address_bits))
        Address read.
    r_data : Out(unsigned(width))
        The word at ``r_addr``, :attr:`latency` enabled cycles after ``r_addr``.
    """

    def __init__(self, width: int, depth: int, *, target: str = "generic", lanes: int = 1):
        if width < 1:
            raise ValueError(f"width must be ≥ 1, not {width}")
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, not {depth}")
        if lanes < 1 or width % lanes:
            raise ValueError(f"lanes must divide width={width}, not {lanes}")
        self.width = width
        self.depth = depth
        self.lanes = lanes
        self.target = check_target(target)
        self.address_bits = _address_bits(depth)
        super().__init__({
            "w_en": In(lanes),
            "w_addr": In(unsigned(self.address_bits)),
            "w_data": In(unsigned(width)),
            "r_en": In(1, init=1),
            "r_addr": In(unsigned(self.address_bits)),
            "r_data": Out(unsigned(width)),
        })

    @property
    def latency(self) -> int:
        """Enabled read cycles from ``r_addr`` to ``r_data``: 2 on every target."""
        return LATENCY

    @property
    def chunks(self) -> int:
        """Groups of :data:`BLOCK_DEPTH` words, each in blocks of its own on ``ecp5``."""
        return -(-self.depth // BLOCK_DEPTH)

    @property
    def blocks(self) -> int:
        """``DP16KD`` blocks instantiated (``ecp5``, one write lane or lanes of :data:`BYTE_BITS`, which the blocks'
        byte enables write): one per 18-bit slice of a word and :attr:`chunk <chunks>` of words; else 0. A read of
        several chunks picks its chunk's word after the blocks' output registers."""
        lanes_fit = self.lanes == 1 or self.width // self.lanes == BYTE_BITS
        return self.chunks * len(_slices(self.width)) if self.target == "ecp5" and lanes_fit else 0

    def elaborate(self, platform):
        m = Module()
        if self.blocks:
            self._elaborate_blocks(m)
            return m
        m.submodules.memory = ram = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
        write = ram.write_port(granularity=self.width // self.lanes if self.lanes > 1 else None)
        read = ram.read_port()
        m.d.comb += [write.en.eq(self.w_en), write.addr.eq(self.w_addr), write.data.eq(self.w_data),
                     read.en.eq(self.r_en), read.addr.eq(self.r_addr)]
        _registered_read(m, read, self.r_en, self.r_data, "r_data_register")
        return m

    def _elaborate_blocks(self, m: Module) -> None:
        """The ``DP16KD`` form (:attr:`blocks`): port A writes, port B reads through its output register."""
        several = self.chunks > 1
        word_bits = _address_bits(BLOCK_DEPTH) if several else self.address_bits
        chunk_words = []
        for chunk in range(self.chunks):
            chosen = self.w_addr[word_bits:] == chunk if several else Const(1)
            words = Signal(self.width, name=f"r_data_chunk{chunk}") if several else self.r_data
            for offset, width in _slices(self.width):
                read_data = Signal(width, name=f"r_data_{chunk}_{offset}" if several else f"r_data_{offset}")
                if self.lanes == 1:
                    clock_enable, byte_enables = self.w_en & chosen if several else self.w_en, 0b11
                else:
                    byte_enables = self.w_en[offset // BYTE_BITS:(offset + width) // BYTE_BITS]
                    clock_enable = byte_enables.any() & chosen
                write = _dp16kd_port("A", clock_enable=clock_enable, output_enable=Const(0), write_enable=Const(1),
                                     address=self.w_addr[:word_bits], byte_enables=byte_enables,
                                     write_data=self.w_data[offset:offset + width], read_data=None)
                read = _dp16kd_port("B", clock_enable=self.r_en, output_enable=self.r_en, write_enable=Const(0),
                                    address=self.r_addr[:word_bits], byte_enables=0, write_data=None,
                                    read_data=read_data)
                name = f"block{chunk}_{offset}" if several else f"block_{offset}"
                m.submodules[name] = _dp16kd(write, read, regmode_a="NOREG", regmode_b="OUTREG")
                m.d.comb += words[offset:offset + width].eq(read_data)
            chunk_words.append(words)
        if several:
            read_chunk = delay(m, self.r_addr[word_bits:], LATENCY, enable=self.r_en, name="r_chunk")
            picked = chunk_words[-1]
            for chunk in reversed(range(self.chunks - 1)):
                picked = Mux(read_chunk == chunk, chunk_words[chunk], picked)
            m.d.comb += self.r_data.eq(picked)
