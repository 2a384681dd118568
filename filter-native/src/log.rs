//! Envoy's log (`[dynamic_modules]` logger). In unit tests, lines are kept per thread instead, so
//! tests can assert what would have been logged.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

#[cfg(not(test))]
pub fn log(level: Level, message: &str) {
    crate::abi::log(level, message);
}

#[cfg(test)]
thread_local! {
    static LINES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
pub fn log(level: Level, message: &str) {
    LINES.with(|l| l.borrow_mut().push(format!("{level:?}: {message}")));
}

/// The lines logged on this thread since the last call.
#[cfg(test)]
pub fn take_test_lines() -> Vec<String> {
    LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}
