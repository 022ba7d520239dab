//! Rotary position embedding configuration and its inverse frequencies.
//!
//! Reads both spellings: legacy `rope_theta` + `rope_scaling`, and transformers 5's
//! `rope_parameters` (`{"rope_type": ..., "rope_theta": ..., ...}`). Supported types: `default`,
//! `linear` and `llama3`; anything else (yarn, longrope, dynamic...) is a clear "not supported".
//! The frequencies are computed in f32 the way transformers computes them.

use serde_json::Value;

use crate::error::{ModelError, Result};

/// How RoPE frequencies are scaled for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Positions divided by `factor` (frequencies divided by it).
    Linear {
        /// Scaling factor.
        factor: f64,
    },
    /// Llama 3.1's piecewise frequency scaling.
    Llama3 {
        /// Scaling factor for low frequencies.
        factor: f64,
        /// Wavelength threshold factor for the low band.
        low_freq_factor: f64,
        /// Wavelength threshold factor for the high band.
        high_freq_factor: f64,
        /// Context the model was pre-trained with.
        original_max_position_embeddings: f64,
    },
}

/// RoPE base and scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeConfig {
    /// The base θ.
    pub theta: f64,
    /// Frequency scaling.
    pub scaling: RopeScaling,
}

impl RopeConfig {
    /// Reads the rope settings from either config style; `default_theta` applies when absent.
    pub fn from_hf(
        rope_theta: Option<f64>,
        rope_scaling: Option<&Value>,
        rope_parameters: Option<&Value>,
        default_theta: f64,
    ) -> Result<Self> {
        // transformers 5 may key parameters by layer type; all of ours share one setting.
        let params = match rope_parameters {
            Some(Value::Object(map)) if !map.contains_key("rope_type") && !map.contains_key("type") => {
                let mut values = map.values();
                let first = values.next();
                if values.any(|v| Some(v) != first) {
                    return Err(ModelError::Unsupported(
                        "different rope_parameters per layer type".into(),
                    ));
                }
                first
            }
            other => other,
        };
        let scaling_source = params.or(rope_scaling).filter(|v| !v.is_null());
        let theta = params
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or(rope_theta)
            .unwrap_or(default_theta);
        let scaling = match scaling_source {
            None => RopeScaling::None,
            Some(v) => parse_scaling(v)?,
        };
        Ok(Self { theta, scaling })
    }

    /// Inverse frequencies `[head_dim / 2]`, f32, as transformers computes them.
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        let base = self.theta as f32;
        let mut inv: Vec<f32> = (0..head_dim / 2)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        match self.scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => inv.iter_mut().for_each(|f| *f /= factor as f32),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let (factor, low, high, orig) = (
                    factor as f32,
                    low_freq_factor as f32,
                    high_freq_factor as f32,
                    original_max_position_embeddings as f32,
                );
                let low_freq_wavelen = orig / low;
                let high_freq_wavelen = orig / high;
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f32::consts::PI / *f;
                    if wavelen > low_freq_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_freq_wavelen {
                        let smooth = (orig / wavelen - low) / (high - low);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
        inv
    }
}

fn parse_scaling(v: &Value) -> Result<RopeScaling> {
    let kind = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &'static str| -> Result<f64> {
        v.get(key).and_then(Value::as_f64).ok_or(ModelError::InvalidConfig {
            field: "rope_scaling",
            reason: format!("rope_type {kind:?} needs a numeric {key:?}"),
        })
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: num("factor")? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        }),
        other => Err(ModelError::Unsupported(format!("rope_type {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_config_styles() {
        let legacy = RopeConfig::from_hf(Some(5e5), Some(&json!({"rope_type": "linear", "factor": 2.0})), None, 1e4).unwrap();
        assert_eq!(legacy, RopeConfig { theta: 5e5, scaling: RopeScaling::Linear { factor: 2.0 } });
        let new = RopeConfig::from_hf(None, None, Some(&json!({"rope_type": "default", "rope_theta": 1e6})), 1e4).unwrap();
        assert_eq!(new, RopeConfig { theta: 1e6, scaling: RopeScaling::None });
        let absent = RopeConfig::from_hf(None, None, None, 1e4).unwrap();
        assert_eq!(absent.theta, 1e4);
    }

    #[test]
    fn unsupported_type_is_an_error() {
        let err = RopeConfig::from_hf(None, Some(&json!({"rope_type": "yarn", "factor": 4.0})), None, 1e4).unwrap_err();
        assert!(err.to_string().contains("yarn"));
    }

    #[test]
    fn llama3_scales_only_low_frequencies() {
        let plain = RopeConfig { theta: 5e5, scaling: RopeScaling::None }.inv_freq(16);
        let scaled = RopeConfig {
            theta: 5e5,
            scaling: RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 64.0 },
        }
        .inv_freq(16);
        assert_eq!(plain[0], scaled[0]); // highest frequency untouched
        assert!((scaled[7] - plain[7] / 8.0).abs() < 1e-12); // lowest divided by factor
    }
}
