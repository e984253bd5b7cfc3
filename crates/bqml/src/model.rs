//! A trained model as scoring needs it: its features' preprocessing, centroids and radii. The
//! engine's model store saves and loads it; `scoring` turns it into SQL.

use netsentinel_core::TableRef;

use crate::kmeans::DistanceType;

#[derive(Debug, Clone, PartialEq)]
pub enum StoredFeature {
    Numeric {
        name: String,
        mean: f64,
        stddev: f64,
    },
    Categorical {
        name: String,
        categories: Vec<Option<String>>,
    },
}

impl StoredFeature {
    pub fn name(&self) -> &str {
        match self {
            StoredFeature::Numeric { name, .. } | StoredFeature::Categorical { name, .. } => name,
        }
    }
}

/// What scoring needs of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub name: TableRef,
    pub features: Vec<StoredFeature>,
    pub standardize: bool,
    pub distance: DistanceType,
    pub centroids: Vec<Vec<f64>>,
    /// Radii with the zero-radius rule applied, as scoring divides by them.
    pub scoring_radii: Vec<f64>,
    pub training_rows: u64,
}

impl StoredModel {
    pub fn dimensions(&self) -> usize {
        self.centroids.first().map_or(0, Vec::len)
    }
}
