//! Synthetic generator (placeholder, being written).
#![allow(missing_docs, dead_code)]
use crate::{DataSource, SourceError, Site, Window, WeatherFrame};
#[derive(Debug, Default)]
pub struct Generator;
#[async_trait::async_trait]
impl DataSource for Generator {
    fn name(&self) -> &str { "synthetic" }
    async fn fetch(&self, _site: &Site, _window: &Window) -> Result<WeatherFrame, SourceError> { todo!() }
}
