//! SafetensorsWeights: round trips over f32/f16/bf16, sharded checkpoints
//! discovered through an index, and every error case naming its file/tensor.

use std::path::{Path, PathBuf};

use ember_loader::{LoaderError, ModelFiles, SafetensorsWeights, WeightDtype};
use half::{bf16, f16};
use safetensors::{Dtype, tensor::TensorView};

fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::I64 => values
            .iter()
            .flat_map(|v| (*v as i64).to_le_bytes())
            .collect(),
        other => panic!("test helper does not encode {other:?}"),
    }
}

/// Writes `tensors` (name, dtype, shape, values) to `path`.
fn write(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<f32>)]) -> PathBuf {
    let data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, d, s, v)| (n.to_string(), *d, s.clone(), encode(v, *d)))
        .collect();
    let views = data
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize_to_file(views, None, path).unwrap();
    path.to_path_buf()
}

const VALUES: [f32; 6] = [0.0, 1.0, -2.5, 0.125, 96.0, -1024.0];

#[test]
fn round_trips_every_float_dtype_and_converts_between_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        &tmp.path().join("model.safetensors"),
        &[
            ("a.f32", Dtype::F32, vec![2, 3], VALUES.to_vec()),
            ("b.f16", Dtype::F16, vec![3, 2], VALUES.to_vec()),
            ("c.bf16", Dtype::BF16, vec![6], VALUES.to_vec()),
        ],
    );
    let w = SafetensorsWeights::open(&[path]).unwrap();
    assert_eq!(w.names(), vec!["a.f32", "b.f16", "c.bf16"]);
    assert_eq!(w.len(), 3);
    assert!(w.contains("b.f16") && !w.contains("nope"));
    assert_eq!(w.total_bytes(), 24 + 12 + 12);

    for (name, dtype, shape) in [
        ("a.f32", WeightDtype::F32, vec![2, 3]),
        ("b.f16", WeightDtype::F16, vec![3, 2]),
        ("c.bf16", WeightDtype::BF16, vec![6]),
    ] {
        assert_eq!(w.dtype(name).unwrap(), dtype);
        assert_eq!(w.shape(name).unwrap(), shape.as_slice());
        let raw = w.raw(name).unwrap();
        assert_eq!((raw.name, raw.dtype, &raw.shape), (name, dtype, &shape));
        assert_eq!(raw.bytes.len(), 6 * dtype.size_in_bytes());
        let (values, got_shape) = w.to_f32(name).unwrap();
        assert_eq!((values.as_slice(), got_shape), (VALUES.as_slice(), shape));
        for target in [WeightDtype::F32, WeightDtype::F16, WeightDtype::BF16] {
            let bytes = w.to_dtype_bytes(name, target).unwrap();
            let expected = encode(
                &VALUES,
                match target {
                    WeightDtype::F32 => Dtype::F32,
                    WeightDtype::F16 => Dtype::F16,
                    WeightDtype::BF16 => Dtype::BF16,
                },
            );
            assert_eq!(bytes.as_ref(), expected.as_slice(), "{name} -> {target}");
            // Same dtype is zero-copy.
            assert_eq!(
                matches!(bytes, std::borrow::Cow::Borrowed(_)),
                target == dtype
            );
        }
    }
}

#[test]
fn sharded_checkpoint_through_index() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("config.json"), "{}").unwrap();
    write(
        &d.join("model-00001-of-00002.safetensors"),
        &[("embed", Dtype::BF16, vec![2, 3], VALUES.to_vec())],
    );
    write(
        &d.join("model-00002-of-00002.safetensors"),
        &[
            ("lm_head", Dtype::F16, vec![3, 2], VALUES.to_vec()),
            ("norm", Dtype::F32, vec![2], vec![1.0, 2.0]),
        ],
    );
    std::fs::write(
        d.join("model.safetensors.index.json"),
        r#"{"metadata": {"total_size": 40}, "weight_map": {
            "norm": "model-00002-of-00002.safetensors",
            "embed": "model-00001-of-00002.safetensors",
            "lm_head": "model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let files = ModelFiles::discover(d).unwrap();
    let w = files.open_weights().unwrap();
    assert_eq!(w.names(), vec!["embed", "lm_head", "norm"]);
    assert_eq!(w.to_f32("norm").unwrap().0, vec![1.0, 2.0]);
    assert_eq!(w.to_f32("embed").unwrap().0, VALUES.to_vec());
    assert_eq!(
        w.file_of("embed").unwrap(),
        d.join("model-00001-of-00002.safetensors")
    );

    // Missing tensor: names the tensor and every file searched.
    let err = w.raw("model.layers.0.q_proj.weight").unwrap_err();
    assert!(matches!(err, LoaderError::TensorNotFound { .. }));
    let msg = err.to_string();
    assert!(msg.contains("model.layers.0.q_proj.weight"), "{msg}");
    assert!(
        msg.contains("model-00001-of-00002") && msg.contains("model-00002-of-00002"),
        "{msg}"
    );
    for e in [
        w.dtype("x").unwrap_err(),
        w.shape("x").unwrap_err(),
        w.to_f32("x").unwrap_err(),
    ] {
        assert!(e.to_string().contains("'x'"), "{e}");
    }
}

#[test]
fn unsupported_dtype_names_dtype_tensor_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        &tmp.path().join("ints.safetensors"),
        &[
            ("position_ids", Dtype::I64, vec![3], vec![0.0, 1.0, 2.0]),
            ("w", Dtype::F32, vec![1], vec![1.0]),
        ],
    );
    // Opening works (the tensor may never be used) ...
    let w = SafetensorsWeights::open(&[path]).unwrap();
    assert_eq!(w.shape("position_ids").unwrap(), &[3]);
    // ... using it does not.
    for err in [
        w.raw("position_ids").unwrap_err(),
        w.dtype("position_ids").unwrap_err(),
        w.to_dtype_bytes("position_ids", WeightDtype::F16)
            .unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(
            msg.contains("I64") && msg.contains("position_ids") && msg.contains("ints.safetensors"),
            "{msg}"
        );
    }
}

#[test]
fn malformed_missing_and_duplicate_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let good = write(
        &d.join("good.safetensors"),
        &[("w", Dtype::F32, vec![6], VALUES.to_vec())],
    );
    let bytes = std::fs::read(&good).unwrap();

    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 3]).unwrap();
    let garbage = d.join("garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    let tiny = d.join("tiny.safetensors");
    std::fs::write(&tiny, b"abc").unwrap();
    let empty = d.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let absent = d.join("absent.safetensors");

    for bad in [&truncated, &garbage, &tiny, &empty, &absent] {
        let err = SafetensorsWeights::open(&[good.clone(), bad.clone()]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&bad.display().to_string()), "{msg}");
    }

    let dup = write(
        &d.join("dup.safetensors"),
        &[("w", Dtype::F16, vec![1], vec![1.0])],
    );
    let err = SafetensorsWeights::open(&[good, dup])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'w'") && err.contains("good.safetensors") && err.contains("dup.safetensors"),
        "{err}"
    );
    assert!(matches!(
        SafetensorsWeights::open(&[]),
        Err(LoaderError::NoShards)
    ));
}
