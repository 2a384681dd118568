//! Metrics as Envoy keeps them: one process-wide stat per name (every VM that defines the same
//! name shares it), reached from a VM through per-VM ids whose low two bits encode the type.

use crate::abi::{MetricType, Status};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The value of one metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    /// Every recorded value, oldest first (capped by `Limits::max_histogram_values`).
    Histogram(Vec<u64>),
}

impl MetricValue {
    /// Counter or gauge value; a histogram's number of samples.
    pub fn value(&self) -> u64 {
        match self {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => *v,
            MetricValue::Histogram(values) => u64::try_from(values.len()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    stats: BTreeMap<String, MetricValue>,
}

/// The stats store of one simulated Envoy. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
    max_metrics: usize,
    max_histogram_values: usize,
}

fn kind(value: &MetricValue) -> MetricType {
    match value {
        MetricValue::Counter(_) => MetricType::Counter,
        MetricValue::Gauge(_) => MetricType::Gauge,
        MetricValue::Histogram(_) => MetricType::Histogram,
    }
}

impl Metrics {
    pub(crate) fn new(max_metrics: usize, max_histogram_values: usize) -> Self {
        Metrics {
            inner: Arc::default(),
            max_metrics,
            max_histogram_values,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the stat if needed. A name already used with another type is refused.
    pub(crate) fn define(&self, kind_wanted: MetricType, name: &str) -> Result<(), Status> {
        let mut inner = self.lock();
        if let Some(existing) = inner.stats.get(name) {
            return if kind(existing) == kind_wanted {
                Ok(())
            } else {
                Err(Status::BadArgument)
            };
        }
        if inner.stats.len() >= self.max_metrics {
            return Err(Status::InternalFailure);
        }
        let value = match kind_wanted {
            MetricType::Counter => MetricValue::Counter(0),
            MetricType::Gauge => MetricValue::Gauge(0),
            MetricType::Histogram => MetricValue::Histogram(Vec::new()),
        };
        inner.stats.insert(name.to_owned(), value);
        Ok(())
    }

    /// `proxy_increment_metric`: counters only go up; gauges go either way; histograms refuse.
    pub(crate) fn increment(&self, name: &str, offset: i64) -> Result<(), Status> {
        let mut inner = self.lock();
        match inner.stats.get_mut(name) {
            Some(MetricValue::Counter(v)) => {
                if offset <= 0 {
                    return Err(Status::BadArgument);
                }
                *v = v.saturating_add(offset.unsigned_abs());
                Ok(())
            }
            Some(MetricValue::Gauge(v)) => {
                *v = if offset >= 0 {
                    v.saturating_add(offset.unsigned_abs())
                } else {
                    v.saturating_sub(offset.unsigned_abs())
                };
                Ok(())
            }
            Some(MetricValue::Histogram(_)) => Err(Status::BadArgument),
            None => Err(Status::NotFound),
        }
    }

    /// `proxy_record_metric`: adds to a counter, sets a gauge, records a histogram sample.
    pub(crate) fn record(&self, name: &str, value: u64) -> Result<(), Status> {
        let max = self.max_histogram_values;
        let mut inner = self.lock();
        match inner.stats.get_mut(name) {
            Some(MetricValue::Counter(v)) => *v = v.saturating_add(value),
            Some(MetricValue::Gauge(v)) => *v = value,
            Some(MetricValue::Histogram(values)) => {
                if values.len() < max {
                    values.push(value);
                }
            }
            None => return Err(Status::NotFound),
        }
        Ok(())
    }

    /// `proxy_get_metric`: counters and gauges only.
    pub(crate) fn read(&self, name: &str) -> Result<u64, Status> {
        match self.lock().stats.get(name) {
            Some(MetricValue::Counter(v) | MetricValue::Gauge(v)) => Ok(*v),
            Some(MetricValue::Histogram(_)) => Err(Status::BadArgument),
            None => Err(Status::NotFound),
        }
    }

    /// One metric by the name the guest defined.
    pub fn get(&self, name: &str) -> Option<MetricValue> {
        self.lock().stats.get(name).cloned()
    }

    /// Every metric, by name.
    pub fn all(&self) -> BTreeMap<String, MetricValue> {
        self.lock().stats.clone()
    }
}

/// One VM's metric ids: `(sequence << 2) | type`, as Envoy numbers them.
#[derive(Debug, Default)]
pub(crate) struct MetricIds {
    names: HashMap<u32, String>,
    next: u32,
}

impl MetricIds {
    pub(crate) fn assign(&mut self, kind: MetricType, name: &str) -> Result<u32, Status> {
        self.next = self.next.checked_add(1).ok_or(Status::InternalFailure)?;
        let id = (self.next << 2) | kind as u32;
        self.names.insert(id, name.to_owned());
        Ok(id)
    }

    /// The name behind an id, checking the type bits agree.
    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_histograms() {
        let m = Metrics::new(10, 2);
        m.define(MetricType::Counter, "c").unwrap();
        m.define(MetricType::Counter, "c").unwrap();
        assert_eq!(m.define(MetricType::Gauge, "c"), Err(Status::BadArgument));
        m.increment("c", 2).unwrap();
        assert_eq!(m.increment("c", -1), Err(Status::BadArgument));
        m.record("c", 3).unwrap();
        assert_eq!(m.read("c"), Ok(5));

        m.define(MetricType::Gauge, "g").unwrap();
        m.record("g", 10).unwrap();
        m.increment("g", -4).unwrap();
        assert_eq!(m.read("g"), Ok(6));

        m.define(MetricType::Histogram, "h").unwrap();
        for v in [1, 2, 3] {
            m.record("h", v).unwrap();
        }
        assert_eq!(m.read("h"), Err(Status::BadArgument));
        assert_eq!(m.get("h"), Some(MetricValue::Histogram(vec![1, 2])));
        assert_eq!(m.increment("nope", 1), Err(Status::NotFound));
    }

    #[test]
    fn ids_encode_the_type() {
        let mut ids = MetricIds::default();
        let c = ids.assign(MetricType::Counter, "a").unwrap();
        let h = ids.assign(MetricType::Histogram, "a").unwrap();
        assert_eq!(c & 3, 0);
        assert_eq!(h & 3, 2);
        assert_ne!(c, h);
        assert_eq!(ids.name(h), Some("a"));
    }
}
