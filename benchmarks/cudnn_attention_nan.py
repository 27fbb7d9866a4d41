"""Whether this GPU's SDPA gives NaN gradients through cuDNN's attention kernel, and finite ones with the
guard the trainers apply (trainers.common.cuda_attention), on the input pattern GRPO batches make:
left-padded rows (a padded query attends to nothing) under a boolean mask, at sequence lengths around
multiples of 128, bf16.

    python benchmarks/cudnn_attention_nan.py

Prints, per length, the non-finite entries of the query gradient with SDPA's default kernel choice and
with cuDNN's switched off. Needs a CUDA GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nonfinite_grad(length: int, pad: int, cudnn: bool) -> int:
    torch.backends.cuda.enable_cudnn_sdp(cudnn)
    generator = torch.Generator(device="cuda").manual_seed(0)
    shape = (2, 4, length, 128)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=generator).requires_grad_()
               for _ in range(3))
    real = torch.ones(2, length, dtype=torch.bool, device="cuda")
    real[1, :pad] = False  # the second row is left-padded
    causal = torch.ones(length, length, dtype=torch.bool, device="cuda").tril()
    mask = causal[None, None] & real[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out.backward(torch.ones_like(out))
    return int((~torch.isfinite(q.grad)).sum())


def main() -> None:
    print(torch.__version__, torch.cuda.get_device_name(), "cuDNN", torch.backends.cudnn.version())
    for length in (640, 704, 768, 832, 1088, 1152):
        default, guarded = nonfinite_grad(length, 37, True), nonfinite_grad(length, 37, False)
        print(f"length {length:5d} (mod 128 = {length % 128:3d}): non-finite grad_q entries, default kernels "
              f"{default:8d}, cuDNN off {guarded:8d}")
    torch.backends.cuda.enable_cudnn_sdp(True)


if __name__ == "__main__":
    main()
