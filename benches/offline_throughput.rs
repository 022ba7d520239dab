//! Offline throughput on a model folder, like `vllm bench throughput`: random-token prompts of
//! `--input-len` tokens, `--output-len` tokens each (EOS ignored), all submitted at once.
//!
//! ```sh
//! cargo bench --bench offline_throughput -- --model tests/fixtures/models/llama3 --backend cpu \
//!     --input-len 32 --output-len 32 --num-prompts 64
//! ```
//! Prints `Throughput: X requests/s, Y total tokens/s, Z output tokens/s` (after one warm-up
//! batch, which on wgpu/cuda also compiles the kernels) and the time to load the model.

use std::time::Instant;

use ember::{BackendKind, DtypeChoice, EngineArgs, LLM, PromptInput, SamplingParams};

struct Options {
    model: String,
    backend: BackendKind,
    dtype: DtypeChoice,
    input_len: usize,
    output_len: usize,
    num_prompts: usize,
    max_num_seqs: Option<usize>,
}

fn parse() -> Options {
    let mut o = Options {
        model: "tests/fixtures/models/llama3".into(),
        backend: BackendKind::Cpu,
        dtype: DtypeChoice::Auto,
        input_len: 32,
        output_len: 32,
        num_prompts: 64,
        max_num_seqs: None,
    };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--model" => o.model = value,
            "--backend" => o.backend = value.parse().expect("--backend cpu|wgpu|cuda"),
            "--dtype" => o.dtype = value.parse().expect("--dtype"),
            "--input-len" => o.input_len = value.parse().expect("--input-len N"),
            "--output-len" => o.output_len = value.parse().expect("--output-len N"),
            "--num-prompts" => o.num_prompts = value.parse().expect("--num-prompts N"),
            "--max-num-seqs" => o.max_num_seqs = Some(value.parse().expect("--max-num-seqs N")),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn main() {
    let o = parse();
    let mut args = EngineArgs::new(o.model.clone());
    args.backend = o.backend;
    args.dtype = o.dtype;
    args.max_num_seqs = o.max_num_seqs;
    args.max_model_len = Some(o.input_len + o.output_len + 1);
    args.wgpu_adapter = std::env::var("EMBER_WGPU_DEVICE").ok();
    let load = Instant::now();
    let mut llm = LLM::new(args).expect("engine");
    let load_s = load.elapsed().as_secs_f64();
    let vocab = llm.engine().info().vocab_size as u64;

    // Deterministic random prompts (a 64-bit LCG), avoiding the first ids (special tokens).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (10 + (state >> 33) % (vocab - 10)) as u32
    };
    let prompts: Vec<PromptInput> =
        (0..o.num_prompts).map(|_| PromptInput::Tokens((0..o.input_len).map(|_| next()).collect())).collect();
    let params = SamplingParams { max_tokens: Some(o.output_len), ignore_eos: true, temperature: 1.0, seed: Some(0), ..Default::default() };

    let warm = Instant::now();
    llm.generate(prompts.iter().take(llm.engine().info().max_num_seqs.min(8)).cloned().collect(), &params).expect("warm-up");
    let warm_s = warm.elapsed().as_secs_f64();

    let start = Instant::now();
    let outputs = llm.generate(prompts, &params).expect("generate");
    let elapsed = start.elapsed().as_secs_f64();
    let output_tokens: usize = outputs.iter().map(|o| o.outputs[0].token_ids.len()).sum();
    let total_tokens = output_tokens + o.num_prompts * o.input_len;
    let info = llm.engine().info();
    println!(
        "model {} backend {} dtype {} | {} prompts x {} in / {} out | load {:.2}s, warm-up {:.2}s",
        o.model, info.backend, info.dtype, o.num_prompts, o.input_len, o.output_len, load_s, warm_s
    );
    println!(
        "Throughput: {:.2} requests/s, {:.2} total tokens/s, {:.2} output tokens/s",
        o.num_prompts as f64 / elapsed,
        total_tokens as f64 / elapsed,
        output_tokens as f64 / elapsed
    );
}
