//! Tensors in JSON: a shape, a dtype and the elements as a flat JSON array in row-major (C) order.

use serde::{Deserialize, Serialize};

use super::InvalidInput;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Boolean.
    Bool,
}

/// One element as JSON writes it: `true`/`false`, an integer, or a number with a fraction or exponent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A JSON boolean.
    Bool(bool),
    /// A JSON integer that fits in an i64.
    Int(i64),
    /// Any other JSON number.
    Float(f64),
}

/// Elements decoded to their dtype (the stores' `TensorData`).
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
}

/// A tensor: `{"shape": [2, 2], "dtype": "f32", "data": [1, 2.5, 3, 4]}`. `data` has exactly
/// `product(shape)` elements (a zero-dimensional tensor, `"shape": []`, has one). Integer dtypes take
/// JSON integers in range; float dtypes take any finite number; `bool` takes `true`/`false`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorPayload {
    /// Extent of each axis.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Elements in row-major order.
    pub data: Vec<Scalar>,
}

fn int<T: TryFrom<i64>>(i: usize, s: Scalar, dtype: DType) -> Result<T, InvalidInput> {
    match s {
        Scalar::Int(v) => T::try_from(v)
            .map_err(|_| InvalidInput(format!("data[{i}] = {v} is out of range for {dtype:?}"))),
        other => Err(InvalidInput(format!(
            "data[{i}] = {other:?} is not an integer, as {dtype:?} requires"
        ))),
    }
}

fn float(i: usize, s: Scalar, dtype: DType) -> Result<f64, InvalidInput> {
    #[allow(clippy::cast_precision_loss)]
    let v = match s {
        Scalar::Int(v) => v as f64,
        Scalar::Float(v) => v,
        Scalar::Bool(b) => {
            return Err(InvalidInput(format!(
                "data[{i}] = {b} is not a number, as {dtype:?} requires"
            )));
        }
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(InvalidInput(format!("data[{i}] is not finite")))
    }
}

impl TensorPayload {
    /// Builds the JSON form of typed elements.
    #[must_use]
    pub fn from_typed(shape: Vec<u64>, data: &TensorData) -> Self {
        let dtype = data.dtype();
        let data = match data {
            TensorData::F32(v) => v.iter().map(|x| Scalar::Float(f64::from(*x))).collect(),
            TensorData::F64(v) => v.iter().map(|x| Scalar::Float(*x)).collect(),
            TensorData::I32(v) => v.iter().map(|x| Scalar::Int(i64::from(*x))).collect(),
            TensorData::I64(v) => v.iter().map(|x| Scalar::Int(*x)).collect(),
            TensorData::U8(v) => v.iter().map(|x| Scalar::Int(i64::from(*x))).collect(),
            TensorData::Bool(v) => v.iter().map(|x| Scalar::Bool(*x)).collect(),
        };
        Self { shape, dtype, data }
    }

    /// Checks the element count against the shape and decodes the elements to the dtype.
    ///
    /// # Errors
    /// [`InvalidInput`] if the count is wrong, the shape's product overflows, or an element does not
    /// fit the dtype (a fraction for an integer type, out of range, a boolean for a number, ...).
    pub fn typed(&self) -> Result<TensorData, InvalidInput> {
        let expected = self
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| InvalidInput("the shape's element count overflows u64".into()))?;
        if expected != self.data.len() as u64 {
            return Err(InvalidInput(format!(
                "shape {:?} needs {expected} elements, data has {}",
                self.shape,
                self.data.len()
            )));
        }
        let d = self.dtype;
        let it = self.data.iter().copied().enumerate();
        Ok(match d {
            #[allow(clippy::cast_possible_truncation)]
            DType::F32 => TensorData::F32(
                it.map(|(i, s)| {
                    let v = float(i, s, d)? as f32;
                    if v.is_finite() {
                        Ok(v)
                    } else {
                        Err(InvalidInput(format!("data[{i}] overflows f32")))
                    }
                })
                .collect::<Result<_, _>>()?,
            ),
            DType::F64 => {
                TensorData::F64(it.map(|(i, s)| float(i, s, d)).collect::<Result<_, _>>()?)
            }
            DType::I32 => TensorData::I32(it.map(|(i, s)| int(i, s, d)).collect::<Result<_, _>>()?),
            DType::I64 => TensorData::I64(it.map(|(i, s)| int(i, s, d)).collect::<Result<_, _>>()?),
            DType::U8 => TensorData::U8(it.map(|(i, s)| int(i, s, d)).collect::<Result<_, _>>()?),
            DType::Bool => TensorData::Bool(
                it.map(|(i, s)| match s {
                    Scalar::Bool(b) => Ok(b),
                    other => Err(InvalidInput(format!(
                        "data[{i}] = {other:?} is not a boolean, as Bool requires"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            ),
        })
    }
}
