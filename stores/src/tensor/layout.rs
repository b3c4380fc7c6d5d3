//! Chunk layout: a regular grid of chunks over the tensor, and copying boxes of elements between
//! row-major buffers (whole tensor ↔ chunk ↔ slice), dtype-agnostic on bytes.

use std::ops::Range;

/// Picks a chunk shape whose size is at most `target_bytes` (or one element): start from the whole
/// tensor and halve the largest axis until it fits. Halving the largest axis keeps chunks compact in
/// every direction, so slices along any axis read few chunks.
pub(crate) fn chunk_shape(shape: &[u64], elem: usize, target_bytes: usize) -> Vec<u64> {
    let mut c = shape.to_vec();
    let bytes = |c: &[u64]| c.iter().product::<u64>().saturating_mul(elem as u64);
    while bytes(&c) > target_bytes as u64 {
        let Some((i, _)) = c
            .iter()
            .enumerate()
            .filter(|(_, x)| **x > 1)
            .max_by_key(|(i, x)| (**x, std::cmp::Reverse(*i)))
        else {
            break;
        };
        c[i] = c[i].div_ceil(2);
    }
    c
}

/// Number of chunks along each axis.
pub(crate) fn grid(shape: &[u64], chunk: &[u64]) -> Vec<u64> {
    shape
        .iter()
        .zip(chunk)
        .map(|(s, c)| s.div_ceil(*c))
        .collect()
}

/// Row-major linear index of a grid coordinate.
pub(crate) fn linear(coord: &[u64], grid: &[u64]) -> u64 {
    coord.iter().zip(grid).fold(0, |acc, (c, g)| acc * g + c)
}

/// The element box a chunk covers (clipped at the tensor's edge).
pub(crate) fn chunk_box(coord: &[u64], chunk: &[u64], shape: &[u64]) -> Vec<Range<u64>> {
    coord
        .iter()
        .zip(chunk)
        .zip(shape)
        .map(|((c, k), s)| c * k..((c + 1) * k).min(*s))
        .collect()
}

/// Calls `f` for every coordinate in the box `lo..hi` (per axis), row-major order.
pub(crate) fn for_each_coord(ranges: &[Range<u64>], mut f: impl FnMut(&[u64])) {
    if ranges.iter().any(|r| r.start >= r.end) {
        return;
    }
    let mut c: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    loop {
        f(&c);
        let mut axis = ranges.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            c[axis] += 1;
            if c[axis] < ranges[axis].end {
                break;
            }
            c[axis] = ranges[axis].start;
        }
    }
}

fn strides(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Copies the box of elements `region` (absolute coordinates) from `src` (covering `src_box`) to
/// `dst` (covering `dst_box`). Both buffers are row-major over their boxes. Runs along the last axis
/// are copied with one `copy_from_slice` each.
pub(crate) fn copy_box(
    src: &[u8],
    src_box: &[Range<u64>],
    dst: &mut [u8],
    dst_box: &[Range<u64>],
    region: &[Range<u64>],
    elem: usize,
) {
    let ext = |b: &[Range<u64>]| b.iter().map(|r| r.end - r.start).collect::<Vec<_>>();
    let (ss, ds) = (strides(&ext(src_box)), strides(&ext(dst_box)));
    let rank = region.len();
    if rank == 0 {
        dst[..elem].copy_from_slice(&src[..elem]);
        return;
    }
    let run = (region[rank - 1].end - region[rank - 1].start) as usize * elem;
    let outer = &region[..rank - 1];
    for_each_coord(outer, |c| {
        let mut so = (region[rank - 1].start - src_box[rank - 1].start) * ss[rank - 1];
        let mut dof = (region[rank - 1].start - dst_box[rank - 1].start) * ds[rank - 1];
        for (i, x) in c.iter().enumerate() {
            so += (x - src_box[i].start) * ss[i];
            dof += (x - dst_box[i].start) * ds[i];
        }
        let (so, dof) = (so as usize * elem, dof as usize * elem);
        dst[dof..dof + run].copy_from_slice(&src[so..so + run]);
    });
}

/// Intersection of two boxes (empty ranges if they do not meet).
pub(crate) fn intersect(a: &[Range<u64>], b: &[Range<u64>]) -> Vec<Range<u64>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.start.max(y.start)..x.end.min(y.end))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_shapes_fit_the_target() {
        assert_eq!(chunk_shape(&[4, 4], 1, 100), vec![4, 4]);
        assert_eq!(chunk_shape(&[1000, 10], 8, 8000), vec![63, 10]);
        assert_eq!(chunk_shape(&[7], 8, 1), vec![1]);
        assert_eq!(chunk_shape(&[], 8, 1), Vec::<u64>::new());
    }

    #[test]
    fn copy_box_moves_a_sub_block() {
        // 3x4 source with values 0..12; copy rows 1..3, cols 1..3 into a 2x2 destination.
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![0u8; 4];
        copy_box(
            &src,
            &[0..3, 0..4],
            &mut dst,
            &[1..3, 1..3],
            &[1..3, 1..3],
            1,
        );
        assert_eq!(dst, vec![5, 6, 9, 10]);
    }
}
