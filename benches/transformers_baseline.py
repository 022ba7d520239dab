"""The transformers side of docs/perf.md: batched `generate` on the same model, prompt shape and
machine as `benches/offline_throughput.rs`, so the two numbers are a ratio measured side by side.

    python benches/transformers_baseline.py --model tests/fixtures/models/llama3 \
        --input-len 32 --output-len 32 --num-prompts 64 --batch-size 64 [--device cpu|cuda] [--dtype float32]

Random token prompts, EOS ignored (min_new_tokens = max_new_tokens), greedy, SDPA attention.
Prints the same "Throughput: ..." line as Ember's bench.
"""
import argparse
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tests/fixtures/models/llama3")
    p.add_argument("--input-len", type=int, default=32)
    p.add_argument("--output-len", type=int, default=32)
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    a = p.parse_args()

    dtype = getattr(torch, a.dtype)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa").to(a.device).eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(10, vocab, (a.num_prompts, a.input_len), generator=g).to(a.device)

    def run(batch):
        with torch.no_grad():
            return model.generate(batch, attention_mask=torch.ones_like(batch), do_sample=False,
                                  max_new_tokens=a.output_len, min_new_tokens=a.output_len, pad_token_id=0)

    run(prompts[: min(a.batch_size, 8)])  # warm-up
    if a.device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out_tokens = 0
    for i in range(0, a.num_prompts, a.batch_size):
        batch = prompts[i : i + a.batch_size]
        out = run(batch)
        out_tokens += (out.shape[1] - batch.shape[1]) * batch.shape[0]
    if a.device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    total = out_tokens + a.num_prompts * a.input_len
    print(f"transformers {torch.__version__} {a.model} {a.device} {a.dtype} | {a.num_prompts} prompts x {a.input_len} in / {a.output_len} out, batch {a.batch_size}")
    print(f"Throughput: {a.num_prompts / elapsed:.2f} requests/s, {total / elapsed:.2f} total tokens/s, {out_tokens / elapsed:.2f} output tokens/s")


if __name__ == "__main__":
    main()
