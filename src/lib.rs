//! Ember: an LLM inference and serving engine written once on burn tensors, running on
//! `cpu` (burn-ndarray), `wgpu` (Vulkan/Metal/DX12) and `cuda`.
//!
//! This facade re-exports the offline API. Start with [`LLM`] and [`EngineArgs`]:
//!
//! ```no_run
//! use ember::{EngineArgs, LLM, SamplingParams};
//! let mut llm = LLM::new(EngineArgs::new("tests/fixtures/models/llama3"))?;
//! let outputs = llm.generate(vec!["Hello".into()], &SamplingParams::greedy())?;
//! println!("{}", outputs[0].outputs[0].text);
//! # Ok::<(), ember::EngineError>(())
//! ```

pub use ember_engine::*;

/// The pure-Rust core: scheduler, block pool, sampling parameters.
pub use ember_core as core;
