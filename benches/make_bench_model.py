"""Writes a random-weight model folder of a real shape, for measuring speed (not quality).

    python benches/make_bench_model.py --out /tmp/llama3-8b [--shape llama3-8b] [--device cuda]

Shapes: `llama3-8b` (Meta-Llama-3-8B: hidden 4096, 32 layers, 32 heads, 8 KV heads,
intermediate 14336, vocab 128256, rope theta 500000, bf16) and `llama3-1b` (a quick one for
smoke runs). The weights are transformers' own initialisation (normal, std 0.02), made on the
given device and saved in bf16 with transformers' sharding; the tokenizer is a word-level one
with the full vocabulary (`<t0>` ... plus Llama 3's special tokens at their ids), so that
random-token prompts of any id decode. Run it on the GPU machine, where torch and transformers
are installed; nothing it writes is committed.
"""
import argparse
import json
import os
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8),
    "llama3-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                      num_key_value_heads=8),
}
VOCAB = 128256
BOS, EOS = 128000, 128001


def write_tokenizer(out):
    vocab = {f"<t{i}>": i for i in range(VOCAB)}
    vocab["<|begin_of_text|>"] = BOS
    del vocab[f"<t{BOS}>"]
    vocab["<|end_of_text|>"] = EOS
    del vocab[f"<t{EOS}>"]
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<t0>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "add_bos_token": False,
                   "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 8192}, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--shape", default="llama3-8b", choices=sorted(SHAPES))
    p.add_argument("--device", default="cuda")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    start = time.time()
    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
                         bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=False, torch_dtype="bfloat16",
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                         **SHAPES[a.shape])
    torch.manual_seed(0)
    with torch.device(a.device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.do_sample = False
    model.save_pretrained(a.out, max_shard_size="5GB")
    write_tokenizer(a.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.shape} ({params / 1e9:.2f} B parameters, bf16) to {a.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
