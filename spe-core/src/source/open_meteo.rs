//! Open-Meteo client (placeholder, being written).
#![allow(missing_docs, dead_code)]
use crate::{DataSource, SourceError, Site, Window, WeatherFrame};
#[derive(Debug, Clone)]
pub struct OpenMeteoConfig;
#[derive(Debug)]
pub struct OpenMeteo;
pub fn parse_forecast(_body: &[u8], _now: chrono::DateTime<chrono::Utc>) -> Result<WeatherFrame, SourceError> { todo!() }
#[async_trait::async_trait]
impl DataSource for OpenMeteo {
    fn name(&self) -> &str { "open-meteo" }
    async fn fetch(&self, _site: &Site, _window: &Window) -> Result<WeatherFrame, SourceError> { todo!() }
}
