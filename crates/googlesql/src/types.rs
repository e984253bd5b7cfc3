//! GoogleSQL type names → DuckDB type names.

use sqlparser::ast::{
    ArrayElemTypeDef, DataType, ExactNumberInfo, StructBracketKind, StructField, TimezoneInfo,
};

/// Returns the DuckDB type, or the name of the GoogleSQL type and a hint when there is no
/// equivalent.
pub(crate) fn map_type(t: &DataType) -> Result<DataType, (String, &'static str)> {
    Ok(match t {
        DataType::Int64 | DataType::Int(_) | DataType::Integer(_) | DataType::BigInt(_) => {
            DataType::BigInt(None)
        }
        DataType::Float64 => DataType::Double(ExactNumberInfo::None),
        DataType::Bool | DataType::Boolean => DataType::Boolean,
        DataType::String(_) => DataType::Varchar(None),
        DataType::Bytes(_) => DataType::Blob(None),
        DataType::Date => DataType::Date,
        DataType::Time(None, TimezoneInfo::None) => DataType::Time(None, TimezoneInfo::None),
        // BigQuery TIMESTAMP is an instant; locally it is UTC wall time (see module docs).
        DataType::Timestamp(None, TimezoneInfo::None) | DataType::Datetime(None) => {
            DataType::Timestamp(None, TimezoneInfo::None)
        }
        DataType::Numeric(info) | DataType::Decimal(info) => match info {
            // BigQuery NUMERIC is 38 digits with 9 after the point.
            ExactNumberInfo::None => DataType::Decimal(ExactNumberInfo::PrecisionAndScale(38, 9)),
            ExactNumberInfo::Precision(p) if *p <= 29 => {
                DataType::Decimal(ExactNumberInfo::PrecisionAndScale(*p, 0))
            }
            ExactNumberInfo::PrecisionAndScale(p, s) if *p <= 38 && (0..=9).contains(s) => {
                DataType::Decimal(ExactNumberInfo::PrecisionAndScale(*p, *s))
            }
            _ => return Err((t.to_string(), "NUMERIC(P, S) with P ≤ 38 and S ≤ 9")),
        },
        DataType::Interval { .. } => t.clone(),
        DataType::Array(ArrayElemTypeDef::AngleBracket(inner)) => DataType::Array(
            ArrayElemTypeDef::SquareBracket(Box::new(map_type(inner)?), None),
        ),
        DataType::Struct(fields, StructBracketKind::AngleBrackets) => {
            let mut mapped = Vec::with_capacity(fields.len());
            for f in fields {
                if f.field_name.is_none() {
                    return Err((t.to_string(), "name every STRUCT field: STRUCT<a INT64>"));
                }
                mapped.push(StructField {
                    field_name: f.field_name.clone(),
                    field_type: map_type(&f.field_type)?,
                    options: None,
                });
            }
            DataType::Struct(mapped, StructBracketKind::Parentheses)
        }
        DataType::BigNumeric(_) | DataType::BigDecimal(_) => {
            return Err((
                t.to_string(),
                "DuckDB decimals stop at 38 digits; use NUMERIC or FLOAT64",
            ));
        }
        _ => {
            return Err((
                t.to_string(),
                "use INT64, FLOAT64, NUMERIC, BOOL, STRING, BYTES, DATE, TIME, DATETIME, TIMESTAMP, INTERVAL, ARRAY or STRUCT",
            ));
        }
    })
}
