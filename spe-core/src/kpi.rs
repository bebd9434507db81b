//! Energy KPIs (placeholder, being written).
