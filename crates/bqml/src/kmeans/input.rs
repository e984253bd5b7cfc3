//! Feature columns as the training or scoring query hands them over, before preprocessing:
//! typed only as far as preprocessing needs (numeric or categorical), and compact, since
//! training holds them next to the feature matrix.

use std::borrow::Cow;

/// One input column, as the training or scoring query returned it.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// INT64, FLOAT64, NUMERIC.
    Numeric(NumericValues),
    /// STRING; BOOL arrives here as `"true"` / `"false"`.
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            ColumnData::Numeric(_) => NUMERIC_KIND,
            ColumnData::Categorical(_) => CATEGORICAL_KIND,
        }
    }
}

/// A numeric column as values plus NULL flags: 8 bytes a value (9 once a NULL appears) where
/// `Option<f64>` takes 16, since training holds millions of them next to the feature matrix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumericValues {
    /// A NULL's slot holds 0.0, so equal columns compare equal.
    values: Vec<f64>,
    /// `None` until the first NULL.
    nulls: Option<Vec<bool>>,
}

impl NumericValues {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            values: Vec::with_capacity(capacity),
            nulls: None,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, row: usize) -> Option<f64> {
        if self.is_null(row) {
            None
        } else {
            Some(self.values[row])
        }
    }

    fn is_null(&self, row: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n[row])
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// The non-NULL values in row order, borrowed when the column has no NULL.
    pub(super) fn present(&self) -> Cow<'_, [f64]> {
        match &self.nulls {
            None => Cow::Borrowed(&self.values),
            Some(nulls) => Cow::Owned(
                self.values
                    .iter()
                    .zip(nulls)
                    .filter(|&(_, &null)| !null)
                    .map(|(&x, _)| x)
                    .collect(),
            ),
        }
    }

    /// The row of the `index`th non-NULL value.
    pub(super) fn row_of_present(&self, index: usize) -> usize {
        match &self.nulls {
            None => index,
            Some(nulls) => nulls
                .iter()
                .enumerate()
                .filter(|&(_, &null)| !null)
                .nth(index)
                .map_or(index, |(row, _)| row),
        }
    }

    pub fn push(&mut self, value: Option<f64>) {
        match value {
            Some(x) => {
                self.values.push(x);
                if let Some(nulls) = &mut self.nulls {
                    nulls.push(false);
                }
            }
            None => {
                let rows = self.values.len();
                self.values.push(0.0);
                self.nulls
                    .get_or_insert_with(|| {
                        let mut nulls = Vec::with_capacity(self.values.capacity());
                        nulls.resize(rows, false);
                        nulls
                    })
                    .push(true);
            }
        }
    }

    /// Appends values none of which is NULL.
    pub fn extend_from_slice(&mut self, values: &[f64]) {
        self.values.extend_from_slice(values);
        if let Some(nulls) = &mut self.nulls {
            nulls.resize(self.values.len(), false);
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.values.shrink_to_fit();
        if let Some(nulls) = &mut self.nulls {
            nulls.shrink_to_fit();
        }
    }

    /// The rows in the given order: row `i` of the result is row `order[i]` of `self`.
    pub fn permuted(&self, order: &[usize]) -> Self {
        Self {
            values: order.iter().map(|&i| self.values[i]).collect(),
            nulls: self
                .nulls
                .as_ref()
                .map(|n| order.iter().map(|&i| n[i]).collect()),
        }
    }
}

impl FromIterator<Option<f64>> for NumericValues {
    fn from_iter<I: IntoIterator<Item = Option<f64>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut out = Self::with_capacity(iter.size_hint().0);
        for value in iter {
            out.push(value);
        }
        out
    }
}

impl From<Vec<Option<f64>>> for NumericValues {
    fn from(values: Vec<Option<f64>>) -> Self {
        values.into_iter().collect()
    }
}

pub(super) const NUMERIC_KIND: &str = "numeric (INT64/FLOAT64/NUMERIC)";
pub(super) const CATEGORICAL_KIND: &str = "categorical (STRING/BOOL)";

#[derive(Debug, Clone, PartialEq)]
pub struct InputColumn {
    pub name: String,
    pub data: ColumnData,
}

impl InputColumn {
    pub fn numeric(name: impl Into<String>, values: Vec<Option<f64>>) -> Self {
        Self {
            name: name.into(),
            data: ColumnData::Numeric(values.into()),
        }
    }

    pub fn categorical(name: impl Into<String>, values: Vec<Option<String>>) -> Self {
        Self {
            name: name.into(),
            data: ColumnData::Categorical(values),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_values_keep_nulls_apart_from_values() {
        let mut v = NumericValues::with_capacity(4);
        v.extend_from_slice(&[1.0, 2.0]);
        assert_eq!(*v.present(), [1.0, 2.0]);
        v.push(None);
        v.push(Some(4.0));
        v.extend_from_slice(&[5.0]);
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            [Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)]
        );
        assert_eq!(*v.present(), [1.0, 2.0, 4.0, 5.0]);
        assert_eq!(v.row_of_present(2), 3);
        assert_eq!(
            v,
            NumericValues::from(vec![Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)])
        );
        let p = v.permuted(&[2, 0, 4]);
        assert_eq!(p.iter().collect::<Vec<_>>(), [None, Some(1.0), Some(5.0)]);
        assert_ne!(
            NumericValues::from(vec![Some(0.0)]),
            NumericValues::from(vec![None])
        );
    }
}
