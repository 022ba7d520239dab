//! ember-loader: finds a Hugging Face model folder and reads its files.
//!
//! * [`resolve_model`] turns a local directory or a hub id (`org/name`) into a
//!   [`ModelFiles`] listing, using the Hugging Face cache and, when allowed,
//!   downloading missing files with `hf-hub`.
//! * [`read_json`] reads any JSON config with errors that name the file.
//! * [`SafetensorsWeights`] memory-maps safetensors shards and hands out tensors
//!   zero-copy ([`RawTensor`]) or converted between F32 / F16 / BF16.
//!
//! Every failure is a [`LoaderError`] whose message names the file, tensor or
//! model involved; nothing in this crate panics on bad input.

#![warn(missing_docs)]

mod dtype;
mod error;
mod hub;
mod json;
mod model_files;
mod weights;

pub use dtype::WeightDtype;
pub use error::{DownloadFailure, LoaderError, Result};
pub use hub::{HubOptions, resolve_model, resolve_model_with};
pub use json::read_json;
pub use model_files::ModelFiles;
pub use weights::{RawTensor, SafetensorsWeights};
