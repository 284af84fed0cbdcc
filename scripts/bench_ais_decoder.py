"""Time the AIS decoder alone for several widths and output strides (random weights).

What ``samzoo.segmentation.ais.ais_maps`` runs per tile: the inference copy of the decoder
(BatchNorm folded, channels-last) on one embedding and its image, without gradients. Random
weights time the same as trained ones. Milliseconds per tile, best of ``--repeats`` blocks of
``--runs`` calls (the least disturbed by other jobs); the ratio column is relative to the first
row, measured in the same run.

    OMP_NUM_THREADS=1 python scripts/bench_ais_decoder.py [--size 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from samzoo.models.ais_decoder import AISDecoder, inference_copy

CANDIDATES = [  # (output_stride, widths)
    (1, (96, 32, 16, 8)),
    (1, (48, 16, 8, 4)),
    (2, (96, 32, 16)),
    (2, (64, 32, 16)),
    (2, (64, 24, 12)),
    (2, (48, 24, 16)),
    (2, (48, 16, 8)),
    (2, (32, 16, 8)),
]


def time_decoder(decoder: AISDecoder, size: int, runs: int, repeats: int) -> float:
    """Best seconds per call of the decoder's inference copy on a ``size`` tile."""
    fast = inference_copy(decoder.eval())
    emb = torch.randn(1, 256, size // 16, size // 16).contiguous(memory_format=torch.channels_last)
    image = torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.inference_mode():
        fast(emb, image)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(runs):
                fast(emb, image)
            best = min(best, (time.perf_counter() - start) / runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"AIS decoder per {args.size} x {args.size} tile, {torch.get_num_threads()} thread(s), "
          f"best of {args.repeats} x {args.runs} calls")
    print(f"{'stride':>6}  {'widths':<18} {'params':>8} {'ms':>7} {'ratio':>6}")
    first = None
    for stride, widths in CANDIDATES:
        decoder = AISDecoder(widths=widths, output_stride=stride)
        ms = 1000 * time_decoder(decoder, args.size, args.runs, args.repeats)
        first = first or ms
        params = sum(p.numel() for p in decoder.parameters())
        print(f"{stride:>6}  {str(widths):<18} {params:>8} {ms:7.2f} {ms / first:6.2f}")


if __name__ == "__main__":
    main()
