//! The Hopper GEMM's launch shape (`kernels/gemm_sm90.cu`): which tile an `m x n` output runs
//! on (by the waves its tiles take on the SMs) and into how many K ranges a product of few tiles
//! splits. Pure arithmetic, tested on the host; `gemm_sm90.rs` launches what it picks.

use std::sync::OnceLock;

/// The K width of a stage (f16/bf16 values; e4m3 stages hold twice as many).
pub(super) const BK: usize = 64;

/// A tile shape of the Hopper kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tile {
    /// 128 x 256, one block per SM.
    Wide,
    /// 128 x 192, one block per SM.
    Mid,
    /// 128 x 128, one block per SM.
    Narrow,
    /// 64 x 128, two blocks per SM.
    Small,
}

impl Tile {
    pub(super) fn rows(self) -> usize {
        if self == Tile::Small { 64 } else { 128 }
    }

    pub(super) fn cols(self) -> usize {
        match self {
            Tile::Wide => 256,
            Tile::Mid => 192,
            _ => 128,
        }
    }

    /// `EMBER_CUDA_GEMM_TILE`: `wide`, `mid`, `narrow` or `small` force one shape for every
    /// product, to compare them (`benches/cuda_ops.rs`); `no_mid` picks among the other three
    /// (the choice before the 192-column tile). `Err(whether mid may be picked)` when no shape
    /// is forced. Read once.
    fn forced() -> Result<Tile, bool> {
        static FORCED: OnceLock<Result<Tile, bool>> = OnceLock::new();
        *FORCED.get_or_init(|| match std::env::var("EMBER_CUDA_GEMM_TILE").as_deref() {
            Ok("wide") => Ok(Tile::Wide),
            Ok("mid") => Ok(Tile::Mid),
            Ok("narrow") => Ok(Tile::Narrow),
            Ok("small") => Ok(Tile::Small),
            Ok("no_mid") => Err(false),
            _ => Err(true),
        })
    }
}

/// The tile shape for an `m x n` output on `sms` SMs, by the time its waves take in units of a
/// 128 x 128 tile: a wide tile costs ~1.8 (twice the work, better reuse), a 192-column one
/// ~1.4; a 64-row tile ~0.55 alone on an SM and ~1.1 per pair when two share one. E.g. qkv
/// (N = 6,144) at M = 1,024 runs 256 mid tiles in 2 waves (2.8) rather than 384 narrow ones
/// in 3 or 192 wide ones in 2 (3.6); o (N = 4,096) at M = 256 runs 128 small tiles at once
/// (0.55) rather than 64 narrow ones on half the SMs (1). `EMBER_CUDA_GEMM_TILE` overrides.
pub(super) fn pick_tile(m: usize, n: usize, sms: usize) -> Tile {
    let with_mid = match Tile::forced() {
        Ok(tile) => return tile,
        Err(with_mid) => with_mid,
    };
    let waves = |tiles: usize, per_sm: usize| tiles.div_ceil(sms * per_sm) as f64;
    let wide = waves(m.div_ceil(128) * n.div_ceil(256), 1) * 1.8;
    let mid = if with_mid { waves(m.div_ceil(128) * n.div_ceil(192), 1) * 1.4 } else { f64::INFINITY };
    let narrow = waves(m.div_ceil(128) * n.div_ceil(128), 1);
    let small_tiles = m.div_ceil(64) * n.div_ceil(128);
    let small = if small_tiles <= sms { 0.55 } else { waves(small_tiles, 2) * 1.1 };
    if small < narrow && small < wide && small < mid {
        Tile::Small
    } else if wide <= narrow && wide <= mid {
        Tile::Wide
    } else if mid < narrow {
        Tile::Mid
    } else {
        Tile::Narrow
    }
}

/// Into how many K ranges an `m x n x k` product on `tile` splits: when its tiles fill at most
/// half the blocks the SMs hold at once (o_proj and down_proj at up to 256 rows on 64 x 128
/// tiles: 32-128 tiles for 264 places), up to 4, keeping at least 8 K tiles (512 deep) per
/// split.
pub(super) fn split_k(tile: Tile, m: usize, n: usize, k: usize, sms: usize) -> usize {
    let tiles = m.div_ceil(tile.rows()) * n.div_ceil(tile.cols());
    let places = if tile == Tile::Small { 2 * sms } else { sms };
    (places / tiles.max(1)).min(4).min(k.div_ceil(BK) / 8).max(1)
}

#[cfg(test)]
mod tests {
    use super::{Tile, pick_tile, split_k};

    #[test]
    fn tile_shape_follows_the_waves() {
        // Llama-3-8B projections on 132 SMs.
        assert_eq!(pick_tile(1024, 6144, 132), Tile::Mid); // qkv: 2 mid waves (2.8) < 3 narrow < 2 wide (3.6)
        assert_eq!(pick_tile(512, 6144, 132), Tile::Mid); // 128 mid tiles, one wave (1.4) < 2 narrow
        assert_eq!(pick_tile(4096, 6144, 132), Tile::Wide); // 6 wide waves (10.8) < 8 mid (11.2) < 12 narrow
        assert_eq!(pick_tile(16384, 6144, 132), Tile::Wide); // 24 wide waves (43.2) < 32 mid (44.8)
        assert_eq!(pick_tile(1024, 28672, 132), Tile::Wide); // gate_up
        assert_eq!(pick_tile(1024, 4096, 132), Tile::Wide); // o: 128 wide tiles, one wave
        assert_eq!(pick_tile(256, 4096, 132), Tile::Small); // o: 128 small tiles at once
        assert_eq!(pick_tile(256, 28672, 132), Tile::Wide); // gate_up: 2 wide waves (3.6) < 4 narrow, 4 small pairs
    }

    #[test]
    fn split_k_fills_the_sms_at_small_row_counts() {
        // A 128-token prefill: o and down on 64 small tiles split 4 ways, qkv's 96 two ways,
        // gate_up's 112 wide tiles not at all.
        assert_eq!(split_k(Tile::Small, 128, 4096, 4096, 132), 4);
        assert_eq!(split_k(Tile::Small, 128, 4096, 14336, 132), 4);
        assert_eq!(split_k(Tile::Small, 128, 6144, 4096, 132), 2);
        assert_eq!(split_k(Tile::Wide, 128, 28672, 4096, 132), 1);
        // Large products and short K never split.
        assert_eq!(split_k(Tile::Wide, 1024, 4096, 4096, 132), 1);
        assert_eq!(split_k(Tile::Small, 64, 4096, 256, 132), 1);
    }
}
