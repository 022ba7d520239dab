//! Offline batch generation with the library API, as vLLM's `LLM.generate`:
//!
//! ```sh
//! cargo run --release --example offline_generate -- tests/fixtures/models/qwen3 cpu
//! ```
//!
//! Arguments: model folder or hub id (default: the bundled tiny Qwen3), backend (default cpu).

use ember::{BackendKind, EngineArgs, LLM, PromptInput, SamplingParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let model = argv.next().unwrap_or_else(|| "tests/fixtures/models/qwen3".into());
    let backend: BackendKind = argv.next().unwrap_or_else(|| "cpu".into()).parse()?;

    let mut args = EngineArgs::new(model);
    args.backend = backend;
    let mut llm = LLM::new(args)?;

    let prompts: Vec<PromptInput> = ["Hello, my name is", "The president of the United States is", "The future of AI is"]
        .into_iter()
        .map(PromptInput::from)
        .collect();
    let params = SamplingParams { temperature: 0.8, top_p: 0.95, max_tokens: Some(32), seed: Some(0), ..Default::default() };
    for out in llm.generate(prompts, &params)? {
        println!("Prompt: {:?}, Generated text: {:?}", out.prompt.unwrap_or_default(), out.outputs[0].text);
    }
    Ok(())
}
