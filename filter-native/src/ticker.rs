//! The configuration's clock: the 1.40 ABI has no timer for an HTTP filter configuration, only a
//! scheduler that posts an event to the main thread from any thread. A small thread of ours posts
//! one every [`TICK`]; the main thread then starts whatever background fetch is due. The thread is
//! stopped and joined when the configuration is destroyed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// As the Wasm module's tick period.
pub const TICK: Duration = Duration::from_millis(100);

/// Something to poke on every tick (Envoy's scheduler: posts an event to the main thread).
pub trait Poke: Send + Sync + 'static {
    fn poke(&self);
}

pub struct Ticker<P: Poke> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    poke: Arc<P>,
}

impl<P: Poke> Ticker<P> {
    pub fn start(poke: P) -> Ticker<P> {
        Self::start_every(poke, TICK)
    }

    pub fn start_every(poke: P, period: Duration) -> Ticker<P> {
        let stop = Arc::new(AtomicBool::new(false));
        let poke = Arc::new(poke);
        let thread = {
            let (stop, poke) = (Arc::clone(&stop), Arc::clone(&poke));
            std::thread::Builder::new()
                .name("oauth2gw-tick".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(period);
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        poke.poke();
                    }
                })
                .ok()
        };
        if thread.is_none() {
            crate::log::log(
                crate::log::Level::Critical,
                "oauth2-gateway: cannot start the tick thread: keys and revocations will not be fetched",
            );
        }
        Ticker { stop, thread, poke }
    }

    /// Stops the thread and waits for it: no poke happens after this returns.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }

    pub fn poker(&self) -> &P {
        &self.poke
    }
}

impl<P: Poke> Drop for Ticker<P> {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);
    impl Poke for Count {
        fn poke(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn it_pokes_periodically_and_never_after_stop() {
        let ticker = Ticker::start_every(Count(AtomicUsize::new(0)), Duration::from_millis(5));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ticker.poker().0.load(Ordering::SeqCst) < 3 {
            assert!(std::time::Instant::now() < deadline, "no ticks");
            std::thread::sleep(Duration::from_millis(5));
        }
        let poke = Arc::clone(&ticker.poke);
        ticker.stop();
        let after = poke.0.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(poke.0.load(Ordering::SeqCst), after);
    }
}
