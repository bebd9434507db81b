//! CSV replay (placeholder, being written).
#![allow(missing_docs, dead_code)]
use crate::{DataSource, SourceError, Site, Window, WeatherFrame};
#[derive(Debug, thiserror::Error)]
#[error("replay")]
pub struct ReplayError;
#[derive(Debug)]
pub struct Replay;
#[async_trait::async_trait]
impl DataSource for Replay {
    fn name(&self) -> &str { "replay" }
    async fn fetch(&self, _site: &Site, _window: &Window) -> Result<WeatherFrame, SourceError> { todo!() }
}
