//! The Shared Signals receiver's record of the SETs it received (see
//! [`crate::store::Transaction::record_received_set`]).

/// What the store knew of a SET's `jti` from its transmitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetReceipt {
    /// Not seen before (or only by a record past its retention): recorded now.
    New,
    /// This very SET (same digest) was stored before: a redelivery, already applied.
    Redelivered,
    /// Another SET with this `jti` was stored before: refused.
    JtiReused,
}
