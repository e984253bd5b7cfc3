//! CREATE MODEL on DuckDB: the training query's result is read as Arrow columns, trained by
//! `netsentinel_bqml::kmeans` and saved in the model store (`models`).

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::compute::cast;
use duckdb::arrow::datatypes::{DataType, Decimal128Type, Field, Float64Type};
use duckdb::arrow::error::ArrowError;
use netsentinel_bqml::kmeans::{self, ColumnData, InitMethod, InputColumn, NumericValues};
use netsentinel_bqml::model::StoredModel;
use netsentinel_bqml::statement::{self, CreateModel};
use netsentinel_bqml::{self as bqml, BqmlError};
use netsentinel_core::EngineError;

use crate::{DuckDbWarehouse, models};

impl DuckDbWarehouse {
    pub(crate) fn create_model(&self, create: &CreateModel) -> Result<(), EngineError> {
        let name = create.model.to_string();
        if models::exists(&self.conn, &create.model)? {
            if create.if_not_exists {
                return Ok(());
            }
            if !create.or_replace {
                return Err(BqmlError::ModelExists(name).into());
            }
        }
        if self.table_exists(&create.model)? {
            return Err(BqmlError::NameTaken(name).into());
        }
        let mut spec = bqml::model_spec(create)?;
        let warm_start_from = if spec.warm_start {
            Some(self.warm_start_source(create)?)
        } else {
            None
        };
        let query = self.translate_query(&create.query)?;
        let mut columns = self.training_columns(&query, &name)?;
        let mut init_flags = match &spec.init_column {
            Some(init_column) => Some(take_init_flags(&mut columns, init_column, &name)?),
            None => None,
        };
        bqml::canonical_row_order(&mut columns, init_flags.as_mut());
        if let Some(selected_rows) = init_flags {
            spec.options.init = InitMethod::Custom { selected_rows };
        }
        let training_error = |source| BqmlError::Training {
            model: name.clone(),
            source,
        };
        if let Some((previous, preprocessing)) = warm_start_from {
            let refitted = kmeans::Preprocessor::fit(&columns, spec.options.standardize_features)
                .map_err(training_error)?;
            spec.options.warm_start_centroids = Some(
                kmeans::map_centroids(&preprocessing, &previous.centroids, &refitted)
                    .map_err(training_error)?,
            );
        }
        let trained = kmeans::train_owned(columns, &spec.options).map_err(training_error)?;
        let options: Vec<String> = create
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        models::save(
            &self.conn,
            &create.model,
            &trained,
            &options.join(", "),
            &create.query,
        )?;
        tracing::info!(model = %name, rows = trained.training_rows, clusters = trained.num_clusters(), iterations = trained.iterations.len(), "trained k-means model");
        Ok(())
    }

    /// The model a `warm_start = TRUE` retrain starts from, with its preprocessing. BigQuery
    /// keeps the number of clusters on a warm start, so a different `num_clusters` is an error.
    pub(crate) fn warm_start_source(
        &self,
        create: &CreateModel,
    ) -> Result<(StoredModel, kmeans::Preprocessor), EngineError> {
        let name = create.model.to_string();
        let option_error = |message: String| BqmlError::Option {
            model: name.clone(),
            message,
        };
        if !models::exists(&self.conn, &create.model)? {
            return Err(option_error(
                "warm_start = TRUE needs an existing model to start from; train it once without warm_start".into(),
            )
            .into());
        }
        let previous = models::load(&self.conn, &create.model)?;
        let requested = create
            .options
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("num_clusters", statement::OptionValue::Number(n)) => Some(*n as usize),
                _ => None,
            });
        if let Some(k) = requested.filter(|&k| k != previous.centroids.len()) {
            return Err(option_error(format!(
                "warm_start = TRUE keeps the model's {} clusters; num_clusters = {k} would need a fresh model",
                previous.centroids.len()
            ))
            .into());
        }
        let preprocessing = models::load_preprocessor(&self.conn, &create.model)?;
        Ok((previous, preprocessing))
    }

    /// The training query's columns, typed as k-means sees them. The result streams in as
    /// Arrow record batches, copied a column slice at a time (not one `Value` per cell) into
    /// columns whose type the result schema fixes.
    pub(crate) fn training_columns(
        &self,
        query: &str,
        model: &str,
    ) -> Result<Vec<InputColumn>, EngineError> {
        let mut statement = self
            .conn
            .prepare(query)
            .map_err(|e| EngineError::sql(query, e))?;
        let batches = statement
            .stream_arrow([])
            .map_err(|e| EngineError::sql(query, e))?;
        let mut columns = batches
            .get_schema()
            .fields()
            .iter()
            .map(|field| FeatureColumn::new(field))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| BqmlError::Option {
                model: model.to_string(),
                message,
            })?;
        for batch in batches {
            let batch = batch.map_err(|e| EngineError::sql(query, e))?;
            for (column, array) in columns.iter_mut().zip(batch.columns()) {
                column
                    .push(array.as_ref())
                    .map_err(|e| EngineError::sql(query, e))?;
            }
        }
        Ok(columns.into_iter().map(FeatureColumn::finish).collect())
    }
}

/// Removes the CUSTOM init column (a BOOL, not a feature) from the training columns.
fn take_init_flags(
    columns: &mut Vec<InputColumn>,
    init_column: &str,
    model: &str,
) -> Result<Vec<bool>, BqmlError> {
    let option_error = |message: String| BqmlError::Option {
        model: model.to_string(),
        message,
    };
    let position = columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(init_column))
        .ok_or_else(|| {
            option_error(format!(
                "kmeans_init_col '{init_column}' is not a column of the training query"
            ))
        })?;
    match columns.remove(position).data {
        ColumnData::Categorical(values) => Ok(values
            .into_iter()
            .map(|v| v.as_deref() == Some("true"))
            .collect()),
        ColumnData::Numeric(_) => Err(option_error(format!(
            "kmeans_init_col '{init_column}' must be a BOOL column"
        ))),
    }
}

/// A training column being read, typed by the result schema.
enum FeatureColumn {
    Numeric {
        name: String,
        values: NumericValues,
    },
    Categorical {
        name: String,
        values: Vec<Option<String>>,
    },
}

impl FeatureColumn {
    /// A column NULL throughout (type NULL) is numeric; k-means then reports it by name.
    pub(crate) fn new(field: &Field) -> Result<Self, String> {
        let name = field.name().clone();
        match field.data_type() {
            t if t.is_numeric() || *t == DataType::Null => Ok(FeatureColumn::Numeric {
                name,
                values: NumericValues::default(),
            }),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => {
                Ok(FeatureColumn::Categorical {
                    name,
                    values: Vec::new(),
                })
            }
            DataType::Dictionary(_, values) if values.is_string() => {
                Ok(FeatureColumn::Categorical {
                    name,
                    values: Vec::new(),
                })
            }
            other => Err(format!(
                "column `{name}` has a type k-means cannot use ({}): features must be numeric, STRING or BOOL; drop it or convert it in the training query",
                arrow_type_name(field, other)
            )),
        }
    }

    pub(crate) fn push(&mut self, array: &dyn Array) -> Result<(), ArrowError> {
        match self {
            FeatureColumn::Numeric { values, .. } => {
                if let DataType::Decimal128(_, scale) = array.data_type() {
                    // DuckDB's own CAST(DECIMAL AS DOUBLE), which scoring applies to the same
                    // column: the integer as f64 over the power of ten.
                    let divisor = 10f64.powi(i32::from(*scale));
                    let decimals = array.as_primitive::<Decimal128Type>();
                    for v in decimals.iter() {
                        values.push(v.map(|v| v as f64 / divisor));
                    }
                    return Ok(());
                }
                let doubles = cast(array, &DataType::Float64)?;
                let doubles = doubles.as_primitive::<Float64Type>();
                if doubles.null_count() == 0 {
                    values.extend_from_slice(doubles.values());
                } else {
                    for v in doubles.iter() {
                        values.push(v);
                    }
                }
            }
            FeatureColumn::Categorical { values, .. } => {
                // BOOL becomes "true" / "false", as k-means expects.
                let text = cast(array, &DataType::Utf8)?;
                values.extend(
                    text.as_string::<i32>()
                        .iter()
                        .map(|v| v.map(str::to_string)),
                );
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> InputColumn {
        match self {
            FeatureColumn::Numeric { name, mut values } => {
                values.shrink_to_fit();
                InputColumn {
                    name,
                    data: ColumnData::Numeric(values),
                }
            }
            FeatureColumn::Categorical { name, values } => InputColumn {
                name,
                data: ColumnData::Categorical(values),
            },
        }
    }
}

/// The SQL name of an Arrow type k-means rejects, for the error message.
fn arrow_type_name(field: &Field, data_type: &DataType) -> &'static str {
    let extension = field
        .metadata()
        .get("ARROW:extension:name")
        .map(|n| n.to_ascii_lowercase());
    if extension.is_some_and(|n| n.contains("geo") || n.contains("wkb")) {
        return "GEOGRAPHY";
    }
    match data_type {
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BYTES",
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..) => "ARRAY",
        DataType::Struct(_) => "STRUCT",
        DataType::Map(..) => "MAP",
        _ => "unsupported",
    }
}
