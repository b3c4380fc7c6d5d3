//! Element types and typed tensor data.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// Unsigned byte.
    U8,
    /// Boolean, stored as one byte (0 or 1).
    Bool,
}

impl DType {
    /// Bytes per element.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::U8 | Self::Bool => 1,
        }
    }
}

/// Elements in row-major (C) order.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// i32 elements.
    I32(Vec<i32>),
    /// i64 elements.
    I64(Vec<i64>),
    /// u8 elements.
    U8(Vec<u8>),
    /// bool elements.
    Bool(Vec<bool>),
}

macro_rules! le_decode {
    ($b:expr, $t:ty, $n:expr) => {
        $b.chunks_exact($n)
            .map(|c| {
                let mut a = [0u8; $n];
                a.copy_from_slice(c);
                <$t>::from_le_bytes(a)
            })
            .collect()
    };
}

impl TensorData {
    /// The element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        match self {
            Self::F32(_) => DType::F32,
            Self::F64(_) => DType::F64,
            Self::I32(_) => DType::I32,
            Self::I64(_) => DType::I64,
            Self::U8(_) => DType::U8,
            Self::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::U8(v) => v.len(),
            Self::Bool(v) => v.len(),
        }
    }

    /// True if there are no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Little-endian bytes (the stored and hashed form).
    #[must_use]
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Self::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::U8(v) => v.clone(),
            Self::Bool(v) => v.iter().map(|b| u8::from(*b)).collect(),
        }
    }

    /// Decodes little-endian bytes.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if the length is not a multiple of the element size or a bool
    /// byte is neither 0 nor 1.
    pub fn from_le_bytes(dtype: DType, b: &[u8]) -> Result<Self> {
        if !b.len().is_multiple_of(dtype.size()) {
            return Err(StoreError::InvalidInput(format!(
                "{} bytes is not a whole number of {dtype:?} elements",
                b.len()
            )));
        }
        Ok(match dtype {
            DType::F32 => Self::F32(le_decode!(b, f32, 4)),
            DType::F64 => Self::F64(le_decode!(b, f64, 8)),
            DType::I32 => Self::I32(le_decode!(b, i32, 4)),
            DType::I64 => Self::I64(le_decode!(b, i64, 8)),
            DType::U8 => Self::U8(b.to_vec()),
            DType::Bool => Self::Bool(
                b.iter()
                    .map(|x| match x {
                        0 => Ok(false),
                        1 => Ok(true),
                        _ => Err(StoreError::InvalidInput(format!(
                            "bool element byte {x} is neither 0 nor 1"
                        ))),
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

/// An n-dimensional array: a shape and row-major data.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Extent of each axis (every extent ≥ 1; an empty shape is a scalar).
    pub shape: Vec<u64>,
    /// The elements, row-major; `data.len()` equals the product of `shape`.
    pub data: TensorData,
}
