//! `spe.CircuitBreaker` (and `spe.ManualClock` for tests): spe-core's
//! circuit breaker around Python calls.
//!
//! The core breaker runs async operations. A Python call is bridged to it
//! by [`CircuitBreaker::_admit`]: it starts the core's `call_classified` on
//! an operation that waits for a one-shot message, polls it once (admission:
//! a refusal comes back at once as `spe.CircuitOpenError`), and returns a
//! [`Call`] that holds the pending future. The Python wrapper
//! (`spe._breaker.CircuitBreaker.call` / `acall`) runs the callable or awaits
//! the coroutine, then reports how it ended ([`Call::success`],
//! [`Call::failure`], [`Call::timed_out`]), which sends the message and
//! polls the future to completion: the core does the accounting (window,
//! slow calls, state changes, probes, epochs) exactly as for a Rust caller.
//! A `Call` dropped without an ending (the task was cancelled) drops the
//! future, which frees a probe slot and records nothing — the core's
//! cancellation rule.
//!
//! The call timeout is the binding's, not the core's (the core's needs a
//! tokio timer): `acall` cancels the coroutine at the timeout; `call` cannot
//! interrupt a Python function, so a call that returns after the timeout
//! keeps its result but counts as a failure (a timeout).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyString, PyTuple, PyType};
use tokio::sync::oneshot;

use spe_core::{
    BreakerConfig, BreakerError, Clock, ErrorClass, ManualClock as CoreManualClock, SlidingWindow,
};

use crate::args;
use crate::errors::Error;

/// How a call ended, as reported to the core breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Success,
    /// An exception the breaker counts as a failure.
    Failure,
    /// An exception of a type in `ignore`: neither success nor failure.
    Ignored,
    /// Ran past the timeout (a failure).
    Late,
    /// The `Call` was dropped (not reachable: the future is dropped with it).
    Dropped,
}

type Pending = Pin<Box<dyn Future<Output = Result<(), BreakerError<Ending>>> + Send>>;

fn poll_once(future: &mut Pending) -> Poll<Result<(), BreakerError<Ending>>> {
    let mut cx = Context::from_waker(Waker::noop());
    future.as_mut().poll(&mut cx)
}

/// A clock that moves only when told to, for testing code that uses a
/// :class:`CircuitBreaker` without sleeping.
///
/// >>> import spe
/// >>> clock = spe.ManualClock()
/// >>> clock.advance(30)
/// >>> clock.now_s
/// 30.0
#[pyclass(module = "spe", name = "ManualClock", frozen)]
pub struct ManualClock {
    clock: CoreManualClock,
}

impl ManualClock {
    /// The core clock (clones share the time).
    pub fn core(&self) -> &CoreManualClock {
        &self.clock
    }
}

#[pymethods]
impl ManualClock {
    #[new]
    fn new() -> Self {
        ManualClock {
            clock: CoreManualClock::new(),
        }
    }

    /// Seconds since the clock was made.
    #[getter]
    fn now_s(&self) -> f64 {
        self.clock.now().as_secs_f64()
    }

    /// Move the clock forward by ``seconds`` (0 or more).
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.clock.advance(args::seconds(seconds, "seconds")?);
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ManualClock(now_s={})",
            PyFloat::new(py, self.now_s()).repr()?
        ))
    }
}

/// The settings as Python shows them (and rebuilds the breaker from).
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    timeout_s: Option<f64>,
    failure_rate: f64,
    open_s: f64,
    minimum_calls: u32,
    window: u32,
    window_s: Option<u32>,
    slow_call_s: f64,
    slow_call_rate: f64,
    backoff: f64,
    max_open_s: f64,
    jitter: f64,
    half_open_probes: u32,
}

impl Settings {
    fn config(&self) -> Result<BreakerConfig, Error> {
        let duration = |name: &str, s: f64| {
            if !(s.is_finite() && s >= 0.0) {
                return Err(Error::config(format!(
                    "{name}={s} is not a duration: give a finite number of seconds, more than 0"
                )));
            }
            Duration::try_from_secs_f64(s)
                .map_err(|_| Error::config(format!("{name}={s} seconds is too long")))
        };
        let max_open_wait = duration("max_open_s", self.max_open_s)?;
        if max_open_wait > BreakerConfig::MAX_OPEN_WAIT {
            return Err(Error::config(format!(
                "max_open_s={} is too long: the open wait is at most one day ({} s)",
                self.max_open_s,
                BreakerConfig::MAX_OPEN_WAIT.as_secs()
            )));
        }
        Ok(BreakerConfig {
            window: match self.window_s {
                Some(seconds) => SlidingWindow::Time { seconds },
                None => SlidingWindow::Count { size: self.window },
            },
            minimum_calls: self.minimum_calls,
            failure_rate: self.failure_rate,
            slow_call_duration: duration("slow_call_s", self.slow_call_s)?,
            slow_call_rate: self.slow_call_rate,
            // Enforced by the binding (see the module documentation).
            call_timeout: None,
            open_wait: duration("open_s", self.open_s)?,
            backoff_multiplier: self.backoff,
            max_open_wait,
            jitter: self.jitter,
            half_open_probes: self.half_open_probes,
        })
    }

    /// A core settings error in the constructor's terms: its keyword
    /// arguments and their values as given, not the core's field names
    /// (`open_wait`, `window.size`, …) and durations.
    fn error(&self, e: spe_core::BreakerConfigError) -> Error {
        let spe_core::BreakerConfigError::Invalid {
            name,
            value,
            expected,
        } = &e
        else {
            return e.into();
        };
        let (name, value, expected) = match *name {
            "window.size" => ("window", self.window.to_string(), "1 to 65535 calls".into()),
            "window.seconds" => (
                "window_s",
                self.window_s
                    .map_or_else(|| value.clone(), |w| w.to_string()),
                "1 to 3600 seconds".into(),
            ),
            "slow_call_duration" => (
                "slow_call_s",
                self.slow_call_s.to_string(),
                "more than 0 seconds".into(),
            ),
            "call_timeout" => (
                "timeout_s",
                self.timeout_s
                    .map_or_else(|| "None".into(), |t| t.to_string()),
                "more than 0 seconds, or None".into(),
            ),
            "open_wait" => (
                "open_s",
                self.open_s.to_string(),
                format!(
                    "more than 0 seconds and at most max_open_s ({} s)",
                    self.max_open_s
                ),
            ),
            "max_open_wait" => (
                "max_open_s",
                self.max_open_s.to_string(),
                "at most one day (86400 s)".into(),
            ),
            "backoff_multiplier" => ("backoff", self.backoff.to_string(), "1 to 100".into()),
            // The other names are the constructor's.
            other => (other, value.clone(), (*expected).to_owned()),
        };
        Error::config(format!(
            "circuit breaker setting {name}={value} is invalid: expected {expected}"
        ))
    }

    fn timeout(&self) -> Result<Option<Duration>, Error> {
        match self.timeout_s {
            None => Ok(None),
            Some(s) if s > 0.0 => Duration::try_from_secs_f64(s).map(Some).map_err(|_| {
                Error::config(format!(
                    "timeout_s={s} is not a duration: give seconds, more than 0"
                ))
            }),
            Some(s) => Err(Error::config(format!(
                "timeout_s={s} is not a timeout: give a number of seconds more than 0, or None for no timeout"
            ))),
        }
    }

    fn kwargs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("timeout_s", self.timeout_s)?;
        d.set_item("failure_rate", self.failure_rate)?;
        d.set_item("open_s", self.open_s)?;
        d.set_item("minimum_calls", self.minimum_calls)?;
        d.set_item("window", self.window)?;
        d.set_item("window_s", self.window_s)?;
        d.set_item("slow_call_s", self.slow_call_s)?;
        d.set_item("slow_call_rate", self.slow_call_rate)?;
        d.set_item("backoff", self.backoff)?;
        d.set_item("max_open_s", self.max_open_s)?;
        d.set_item("jitter", self.jitter)?;
        d.set_item("half_open_probes", self.half_open_probes)?;
        Ok(d)
    }
}

/// A circuit breaker: stops calling a failing dependency for a while, then
/// probes it (compiled core; use :class:`spe.CircuitBreaker`).
#[pyclass(module = "spe._spe", name = "CircuitBreaker", frozen, subclass)]
pub struct CircuitBreaker {
    inner: spe_core::CircuitBreaker,
    settings: Settings,
    timeout: Option<Duration>,
    ignore: Py<PyTuple>,
    clock: Option<Py<ManualClock>>,
    /// Timeouts seen by the binding (the core never times out here).
    timeouts: AtomicU64,
}

impl CircuitBreaker {
    /// The core breaker (shared state).
    pub fn core(&self) -> &spe_core::CircuitBreaker {
        &self.inner
    }

    /// The core settings, for services that build their own breaker.
    pub fn core_config(&self) -> BreakerConfig {
        let mut config = self.inner.config().clone();
        config.call_timeout = self.timeout;
        config
    }
}

#[pymethods]
impl CircuitBreaker {
    #[new]
    #[pyo3(signature = (
        timeout_s = Some(5.0),
        failure_rate = 0.5,
        open_s = 30.0,
        *,
        minimum_calls = 2,
        window = 10,
        window_s = None,
        slow_call_s = 3.0,
        slow_call_rate = 0.8,
        backoff = 2.0,
        max_open_s = 600.0,
        jitter = 0.1,
        half_open_probes = 1,
        ignore = None,
        clock = None,
    ))]
    #[pyo3(
        text_signature = "(timeout_s=5.0, failure_rate=0.5, open_s=30.0, *, minimum_calls=2, window=10, \
                          window_s=None, slow_call_s=3.0, slow_call_rate=0.8, backoff=2.0, \
                          max_open_s=600.0, jitter=0.1, half_open_probes=1, ignore=None, clock=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = real::timeout_s)] timeout_s: Option<f64>,
        #[pyo3(from_py_with = real::failure_rate)] failure_rate: f64,
        #[pyo3(from_py_with = real::open_s)] open_s: f64,
        #[pyo3(from_py_with = args::minimum_calls)] minimum_calls: u32,
        #[pyo3(from_py_with = args::window)] window: u32,
        window_s: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = real::slow_call_s)] slow_call_s: f64,
        #[pyo3(from_py_with = real::slow_call_rate)] slow_call_rate: f64,
        #[pyo3(from_py_with = real::backoff)] backoff: f64,
        #[pyo3(from_py_with = real::max_open_s)] max_open_s: f64,
        #[pyo3(from_py_with = real::jitter)] jitter: f64,
        #[pyo3(from_py_with = args::half_open_probes)] half_open_probes: u32,
        ignore: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = manual_clock)] clock: Option<Py<ManualClock>>,
    ) -> PyResult<Self> {
        let window_s = window_s
            .filter(|w| !w.is_none())
            .map(args::window_s)
            .transpose()?;
        let settings = Settings {
            timeout_s,
            failure_rate,
            open_s,
            minimum_calls,
            window,
            window_s,
            slow_call_s,
            slow_call_rate,
            backoff,
            max_open_s,
            jitter,
            half_open_probes,
        };
        let timeout = settings.timeout()?;
        let config = settings.config()?;
        let inner = match &clock {
            Some(c) => spe_core::CircuitBreaker::with_clock(config, c.get().clock.clone()),
            None => spe_core::CircuitBreaker::new(config),
        }
        .map_err(|e| settings.error(e))?;
        let ignore = exception_types(py, ignore)?;
        Ok(CircuitBreaker {
            inner,
            settings,
            timeout,
            ignore,
            clock,
            timeouts: AtomicU64::new(0),
        })
    }

    /// ``"closed"``, ``"open"``, ``"half_open"``, ``"forced_open"`` or ``"disabled"``.
    ///
    /// An open circuit whose wait has passed stays ``"open"`` until the next
    /// call goes through as a probe.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().name()
    }

    /// Seconds until an open circuit lets a probe through (0 if it may go
    /// now); ``None`` unless open.
    #[getter]
    fn retry_after_s(&self) -> Option<f64> {
        self.inner.retry_after().map(|d| d.as_secs_f64())
    }

    /// The call timeout in seconds, or ``None``.
    #[getter]
    fn timeout_s(&self) -> Option<f64> {
        self.settings.timeout_s
    }

    /// The :class:`ManualClock` the breaker runs on, or ``None`` (the system clock).
    #[getter]
    fn clock(&self, py: Python<'_>) -> Option<Py<ManualClock>> {
        self.clock.as_ref().map(|c| c.clone_ref(py))
    }

    /// The exception types that count neither as success nor as failure.
    #[getter]
    fn ignore(&self, py: Python<'_>) -> Py<PyTuple> {
        self.ignore.clone_ref(py)
    }

    /// The settings, as keyword arguments of the constructor (``ignore``
    /// included; not ``clock``, which is not a setting).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let kwargs = self.settings.kwargs(py)?;
        kwargs.set_item("ignore", self.ignore.bind(py))?;
        Ok(kwargs)
    }

    /// A snapshot of the counters, as a dict: ``state``, ``time_in_state_s``,
    /// ``window_calls``, ``window_failures``, ``window_slow_calls``,
    /// ``failure_rate``, ``slow_call_rate`` (over the sliding window),
    /// ``rejected``, ``timeouts``, ``ignored``, ``transitions`` (since
    /// creation), ``open_attempt`` (failed probes in a row) and
    /// ``retry_after_s``.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics();
        let d = PyDict::new(py);
        d.set_item("state", m.state.name())?;
        d.set_item("time_in_state_s", m.time_in_state.as_secs_f64())?;
        d.set_item("window_calls", m.window_calls)?;
        d.set_item("window_failures", m.window_failures)?;
        d.set_item("window_slow_calls", m.window_slow_calls)?;
        d.set_item("failure_rate", m.failure_rate)?;
        d.set_item("slow_call_rate", m.slow_call_rate)?;
        d.set_item("rejected", m.rejected)?;
        d.set_item(
            "timeouts",
            m.timeouts + self.timeouts.load(Ordering::Relaxed),
        )?;
        d.set_item("ignored", m.ignored)?;
        d.set_item("transitions", m.transitions)?;
        d.set_item("open_attempt", m.open_attempt)?;
        d.set_item("retry_after_s", m.retry_after.map(|d| d.as_secs_f64()))?;
        Ok(d)
    }

    /// Refuse every call until :meth:`reset`.
    fn force_open(&self) {
        self.inner.force_open();
    }

    /// Let every call through and record nothing, until :meth:`reset`.
    fn disable(&self) {
        self.inner.disable();
    }

    /// Back to ``"closed"`` with an empty window and no backoff.
    fn reset(&self) {
        self.inner.reset();
    }

    /// Ask the breaker for permission to make one call.
    ///
    /// Returns the pending call, to be ended exactly once with ``success()``,
    /// ``failure(exc)``, ``timed_out()`` or ``cancel()``. Raises
    /// ``spe.CircuitOpenError`` if the breaker refuses the call. Low-level:
    /// ``call``, ``acall`` and the decorator use it.
    fn _admit(slf: &Bound<'_, Self>) -> PyResult<Call> {
        let this = slf.get();
        let (tx, rx) = oneshot::channel::<Ending>();
        let breaker = this.inner.clone();
        let start = breaker.clock().now();
        let mut pending: Pending = Box::pin(async move {
            breaker
                .call_classified(
                    move || async move {
                        match rx.await {
                            Ok(Ending::Success) => Ok(()),
                            Ok(other) => Err(other),
                            Err(_) => Err(Ending::Dropped),
                        }
                    },
                    |e: &Ending| match e {
                        Ending::Ignored => ErrorClass::Ignore,
                        _ => ErrorClass::Failure,
                    },
                )
                .await
        });
        match poll_once(&mut pending) {
            Poll::Pending => Ok(Call {
                breaker: slf.clone().unbind(),
                state: Mutex::new(Some((tx, pending))),
                start,
            }),
            Poll::Ready(Err(BreakerError::Rejected(rejected))) => {
                Err(Error::Rejected(rejected).into())
            }
            // The operation waits for the message: it cannot be ready yet.
            Poll::Ready(_) => {
                Err(Error::config("the circuit breaker ended a call before it ran").into())
            }
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.get();
        let py = slf.py();
        let timeout = match this.settings.timeout_s {
            Some(t) => PyFloat::new(py, t).repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "{}(state={}, timeout_s={timeout}, failure_rate={}, open_s={})",
            slf.get_type().qualname()?,
            PyString::new(py, this.state()).repr()?,
            PyFloat::new(py, this.settings.failure_rate).repr()?,
            PyFloat::new(py, this.settings.open_s).repr()?,
        ))
    }

    /// Pickle and copy support: a new, closed breaker with the same settings
    /// (the state and counters are not carried over; a ``ManualClock`` is
    /// replaced by the system clock).
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<((), Bound<'py, PyDict>)> {
        Ok(((), self.config(py)?))
    }
}

/// The breaker's real-number arguments: numbers, not bools (`True` would
/// read as 1), with a `TypeError` that names the argument.
mod real {
    use pyo3::prelude::*;

    macro_rules! real_args {
        ($($fn:ident),* $(,)?) => {$(
            #[doc = concat!("`", stringify!($fn), "`: a real number, not a bool.")]
            pub fn $fn(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
                crate::args::real(obj, stringify!($fn))
            }
        )*};
    }

    real_args!(
        failure_rate,
        open_s,
        slow_call_s,
        slow_call_rate,
        backoff,
        max_open_s,
        jitter
    );

    /// `timeout_s`: seconds, or `None` for no timeout.
    pub fn timeout_s(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        if obj.is_none() {
            return Ok(None);
        }
        crate::args::real(obj, "timeout_s").map(Some)
    }
}

/// A `clock=` argument: `None` or a :class:`ManualClock`, with a
/// `TypeError` that names it.
pub fn manual_clock(obj: &Bound<'_, PyAny>) -> PyResult<Option<Py<ManualClock>>> {
    if obj.is_none() {
        return Ok(None);
    }
    obj.extract::<Py<ManualClock>>().map(Some).map_err(|_| {
        PyTypeError::new_err(format!(
            "clock must be a spe.ManualClock or None (the system clock), not {}",
            args::type_name(obj)
        ))
    })
}

/// `ignore=`: `None`, an exception class, or a sequence of them.
fn exception_types(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTuple>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(PyTuple::empty(py).unbind());
    };
    let items: Vec<Bound<'_, PyAny>> = if obj.is_instance_of::<PyType>() {
        vec![obj.clone()]
    } else if obj.is_instance_of::<PyString>() {
        // A string iterates over its letters: name the real mistake.
        return Err(ignore_type_error(obj));
    } else {
        obj.try_iter()
            .map_err(|_| ignore_type_error(obj))?
            .collect::<PyResult<_>>()?
    };
    let base = py.get_type::<pyo3::exceptions::PyBaseException>();
    for item in &items {
        let ok = item
            .cast::<PyType>()
            .map(|t| t.is_subclass(&base).unwrap_or(false))
            .unwrap_or(false);
        if !ok {
            return Err(ignore_type_error(item));
        }
    }
    Ok(PyTuple::new(py, items)?.unbind())
}

fn ignore_type_error(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "ignore must be an exception class or a tuple of them (e.g. ignore=(KeyError,)), not {}",
        obj.repr().map(|r| r.to_string()).unwrap_or_default()
    ))
}

/// A call admitted by a :class:`CircuitBreaker`, waiting to be told how it
/// ended (low-level; ``CircuitBreaker.call`` and ``acall`` use it).
#[pyclass(module = "spe._spe", name = "_Call", frozen)]
pub struct Call {
    breaker: Py<CircuitBreaker>,
    state: Mutex<Option<(oneshot::Sender<Ending>, Pending)>>,
    start: Duration,
}

impl Call {
    /// End the call with `ending`: the core records it.
    fn end(&self, ending: Ending) {
        let taken = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((tx, mut pending)) = taken {
            let _ = tx.send(ending);
            // Ready now: the operation has its message and nothing else waits.
            let _ = poll_once(&mut pending);
        }
    }

    fn elapsed(&self, breaker: &CircuitBreaker) -> Duration {
        breaker.inner.clock().now().saturating_sub(self.start)
    }
}

#[pymethods]
impl Call {
    /// The call returned normally. Returns ``True`` if it took longer than
    /// the breaker's timeout, in which case it was counted as a failure (a
    /// timeout) although its result stands.
    fn success(&self, py: Python<'_>) -> bool {
        let breaker = self.breaker.bind(py).get();
        let late = breaker.timeout.is_some_and(|t| self.elapsed(breaker) >= t);
        if late {
            breaker.timeouts.fetch_add(1, Ordering::Relaxed);
            self.end(Ending::Late);
        } else {
            self.end(Ending::Success);
        }
        late
    }

    /// The call raised ``exc``: a failure, unless its type is in the
    /// breaker's ``ignore``. Returns ``True`` if it counted as a failure.
    fn failure(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<bool> {
        let breaker = self.breaker.bind(py).get();
        let ignored = exc.is_instance(breaker.ignore.bind(py).as_any())?;
        self.end(if ignored {
            Ending::Ignored
        } else {
            Ending::Failure
        });
        Ok(!ignored)
    }

    /// The call ran past the timeout and was abandoned: a failure. Returns
    /// the ``spe.CallTimeoutError`` to raise.
    fn timed_out(&self, py: Python<'_>) -> PyErr {
        let breaker = self.breaker.bind(py).get();
        breaker.timeouts.fetch_add(1, Ordering::Relaxed);
        self.end(Ending::Late);
        Error::Timeout {
            what: "the call".into(),
            after_s: breaker.settings.timeout_s.unwrap_or_default(),
        }
        .into()
    }

    /// The call was cancelled by its caller: nothing is recorded (a probe
    /// slot is freed).
    fn cancel(&self) {
        let _ = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    /// Seconds since the call was admitted, on the breaker's clock.
    #[getter]
    fn elapsed_s(&self, py: Python<'_>) -> f64 {
        self.elapsed(self.breaker.bind(py).get()).as_secs_f64()
    }

    fn __repr__(&self) -> String {
        let pending = self.state.lock().map(|s| s.is_some()).unwrap_or(false);
        format!("_Call(pending={})", if pending { "True" } else { "False" })
    }
}
