//! [`WeightDtype`], the floating-point storage types ember accepts in
//! checkpoints, and the little-endian byte conversions between them.

use std::borrow::Cow;
use std::fmt;

use half::{bf16, f16};

/// Storage type of a checkpoint tensor that ember can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightDtype {
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 half precision.
    F16,
    /// bfloat16 (the upper half of an f32).
    BF16,
}

impl WeightDtype {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }

    /// The safetensors spelling of the dtype (`"F32"`, `"F16"`, `"BF16"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
        }
    }

    /// Maps a safetensors dtype; `None` for anything that is not F32/F16/BF16.
    pub(crate) fn from_safetensors(dtype: safetensors::Dtype) -> Option<Self> {
        match dtype {
            safetensors::Dtype::F32 => Some(Self::F32),
            safetensors::Dtype::F16 => Some(Self::F16),
            safetensors::Dtype::BF16 => Some(Self::BF16),
            _ => None,
        }
    }
}

impl fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes little-endian `bytes` of dtype `from` into f32 values.
/// A trailing partial element (impossible for validated safetensors data) is ignored.
pub(crate) fn bytes_to_f32(bytes: &[u8], from: WeightDtype) -> Vec<f32> {
    match from {
        WeightDtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        WeightDtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        WeightDtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}

/// Re-encodes little-endian `bytes` from dtype `from` to dtype `to`.
///
/// Same dtype borrows; otherwise values go through f32 (exact for F16/BF16 to
/// F32, round-to-nearest-even towards the narrower types; BF16 values beyond
/// the F16 range become +-inf).
pub(crate) fn convert_bytes(bytes: &[u8], from: WeightDtype, to: WeightDtype) -> Cow<'_, [u8]> {
    if from == to {
        return Cow::Borrowed(bytes);
    }
    let n = bytes.len() / from.size_in_bytes();
    let mut out = Vec::with_capacity(n * to.size_in_bytes());
    match (from, to) {
        // bf16 -> f32 is a shift: no need for the generic path.
        (WeightDtype::BF16, WeightDtype::F32) => {
            for c in bytes.chunks_exact(2) {
                out.extend_from_slice(&[0, 0, c[0], c[1]]);
            }
        }
        _ => {
            for v in bytes_to_f32(bytes, from) {
                match to {
                    WeightDtype::F32 => out.extend_from_slice(&v.to_le_bytes()),
                    WeightDtype::F16 => out.extend_from_slice(&f16::from_f32(v).to_le_bytes()),
                    WeightDtype::BF16 => out.extend_from_slice(&bf16::from_f32(v).to_le_bytes()),
                }
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [WeightDtype; 3] = [WeightDtype::F32, WeightDtype::F16, WeightDtype::BF16];

    fn encode(values: &[f32], to: WeightDtype) -> Vec<u8> {
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        convert_bytes(&f32_bytes, WeightDtype::F32, to).into_owned()
    }

    #[test]
    fn exactly_representable_values_round_trip_between_all_dtypes() {
        // Representable exactly in f32, f16 and bf16.
        let values = [0.0f32, -0.0, 1.0, -2.5, 0.125, 96.0, -1024.0, 0.5];
        for from in ALL {
            let bytes = encode(&values, from);
            assert_eq!(bytes.len(), values.len() * from.size_in_bytes());
            assert_eq!(bytes_to_f32(&bytes, from), values);
            for to in ALL {
                let converted = convert_bytes(&bytes, from, to);
                assert_eq!(bytes_to_f32(&converted, to), values, "{from} -> {to}");
                assert_eq!(matches!(converted, Cow::Borrowed(_)), from == to);
            }
        }
    }

    #[test]
    fn narrowing_rounds_and_overflows_like_half() {
        let bytes = encode(&[1.0e6, 0.1], WeightDtype::BF16);
        let as_f16 = convert_bytes(&bytes, WeightDtype::BF16, WeightDtype::F16);
        let back = bytes_to_f32(&as_f16, WeightDtype::F16);
        assert!(back[0].is_infinite());
        assert!((back[1] - 0.1).abs() < 1e-3);
        assert_eq!(WeightDtype::BF16.to_string(), "BF16");
    }
}
