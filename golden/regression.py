"""The regression matrices: the configurations each unit's RTL tests check in ``make test`` and ``int8attn soak``
streams 10⁵ random rows through (:data:`SOAK_MATRIX`).

* Softmax (:data:`SOFTMAX_REGRESSION`): every row shape of :data:`SHAPES` with its own quantisation, so that each
  ``(N, P)``, each input scale, each β and each zero point appears.
* Requantizer (:data:`REQUANT_REGRESSION`): per-tensor and per-channel multipliers, both conventions, ``lanes`` 1, 4
  and 16, every fused activation, both output widths, left and right shifts.
* Dense (:data:`DENSE_REGRESSION`): per-tensor and per-channel scales, both conventions, every activation, weight and
  input zero points, one and several folds and input beats, ``pe``/``simd`` from 1 to 8.
* Matmul (:data:`MATMUL_REGRESSION`): zero points, ``adj_y``, one-beat rows, ``pe``/``simd`` from 1 to 4.
* Attention (:data:`ATTENTION_SMALL`): the unit's defaults, one head of S = 8 tokens of E = 8 features, and one of
  S = E = d = 4 with every fold at its widest (a sequence every 4 cycles).
"""

import itertools
from typing import Any

import numpy as np

from int8attn.golden.attention_unit import AttentionConfig
from int8attn.golden.config import SoftmaxConfig
from int8attn.golden.dense import DenseConfig
from int8attn.golden.matmul import MatmulConfig
from int8attn.golden.requant import RequantConfig

SHAPES = ((1, 1), (8, 1), (10, 1), (10, 2), (64, 4), (256, 8), (1024, 4))
"""Softmax row shapes ``(N, P)``."""
INPUT_SCALES = (1 / 16, 0.05, 0.25)
BETAS = (1.0, 0.5)
ZERO_POINTS = (0, -128, 127, 5)
QUANTISATIONS = tuple(itertools.product(INPUT_SCALES, BETAS))

SOFTMAX_REGRESSION = tuple(
    SoftmaxConfig(n=n, lanes=lanes, input_scale=scale, beta=beta, input_zero_point=zero_point)
    for (n, lanes), (scale, beta), zero_point
    in zip(SHAPES, itertools.cycle(QUANTISATIONS), itertools.cycle(ZERO_POINTS)))


def softmax_label(config: SoftmaxConfig) -> str:
    """``<mode>-n<N>-p<P>-s<scale>-b<beta>-zp<zero point>`` and the values of the mode's own knobs."""
    knobs = "".join(f"-{value}" for name, value in config.as_dict().items() if name.startswith(config.mode))
    return (f"{config.mode}-n{config.n}-p{config.lanes}-s{config.input_scale:g}-b{config.beta:g}"
            f"-zp{config.input_zero_point}{knobs}")


SPREAD_WEIGHTS_16 = tuple(float(scale) for scale in np.geomspace(1e-4, 2.0, 16))
RIGHT_SHIFT_WEIGHTS_32 = tuple(float(scale) for scale in np.geomspace(3e-3, 1.0, 32))

REQUANT_REGRESSION = {
    "p1-tensor-tflite-relu-int8": RequantConfig(channels=8, lanes=1, multipliers=(1518500250,), shifts=(2,),
                                                output_zero_point=-7, activation="relu"),
    "p4-channel-tinymind-int16": RequantConfig(channels=16, lanes=4, input_scale=0.5, weight_scales=SPREAD_WEIGHTS_16,
                                               output_scale=0.01, output_bits=16, output_zero_point=300,
                                               convention="tinymind"),
    "p16-channel-tflite-relu6-int8": RequantConfig(channels=32, lanes=16, input_scale=0.02,
                                                   weight_scales=RIGHT_SHIFT_WEIGHTS_32, output_scale=0.05,
                                                   output_zero_point=-128, activation="relu6"),
    "p4-tensor-tinymind-none-int8": RequantConfig(channels=8, lanes=4, multipliers=(1 << 30,), shifts=(9,),
                                                  output_zero_point=3, act_min=-100, act_max=90,
                                                  convention="tinymind"),
}

DENSE_REGRESSION = {
    "pe2-simd4-tensor-zero-points": DenseConfig(in_features=16, out_features=8, pe=2, simd=4, input_zero_point=5,
                                                weight_zero_point=-3, output_zero_point=11),
    "pe1-simd1-channel-relu": DenseConfig(in_features=6, out_features=4, weight_scale=(0.01, 0.02, 0.004, 0.03),
                                          output_zero_point=-20, activation="relu", weights_seed=2),
    "pe3-simd2-channel-relu6": DenseConfig(in_features=6, out_features=6, pe=3, simd=2, output_scale=0.05,
                                           weight_scale=(0.01, 0.02, 0.004, 0.03, 0.011, 0.007),
                                           input_zero_point=-128, activation="relu6", weights_seed=3),
    "pe8-simd8-tinymind-relu": DenseConfig(in_features=8, out_features=8, pe=8, simd=8, input_zero_point=34,
                                           activation="relu", convention="tinymind", weights_seed=4),
}

MATMUL_REGRESSION = {
    "pe2-simd2-zero-points": MatmulConfig(m=4, k=8, n=4, pe=2, simd=2, lhs_zero_point=3, rhs_zero_point=-5,
                                          output_zero_point=7),
    "pe3-simd4-adj-y": MatmulConfig(m=5, k=16, n=6, pe=3, simd=4, adj_y=True, lhs_zero_point=-128,
                                    output_scale=2.0),
    "pe1-simd1-one-beat-rows": MatmulConfig(m=3, k=1, n=2, rhs_zero_point=100, output_scale=0.01),
}

ATTENTION_SMALL = {"tflite-h1-s8-e8": AttentionConfig(),
                   "tflite-h1-s4-e4-full-rate": AttentionConfig(seq_len=4, embed_dim=4, head_dim=4, proj_simd=4,
                                                                proj_pe=4, score_pe=4, params_seed=9)}

SOAK_MATRIX: dict[str, Any] = {
    **{f"softmax/{softmax_label(config)}": config for config in SOFTMAX_REGRESSION},
    **{f"requant/{name}": config for name, config in REQUANT_REGRESSION.items()},
    **{f"dense/{name}": config for name, config in DENSE_REGRESSION.items()},
    **{f"matmul/{name}": config for name, config in MATMUL_REGRESSION.items()},
    **{f"attention/{name}": config for name, config in ATTENTION_SMALL.items()},
}
"""Every configuration ``int8attn soak`` runs, by ``<unit>/<label>``."""
