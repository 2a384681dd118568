//! The IDP hangs under load: SIGSTOP, so its socket still accepts connections (the kernel
//! queues them) and nothing is ever answered, for longer than every timeout of the gateway; then
//! SIGCONT.

use super::{FAULT, LONGEST_TIMEOUT, idp_outage};

#[test]
fn idp_hung_longer_than_every_timeout_under_load() {
    let _slot = crate::slot();
    assert!(FAULT > LONGEST_TIMEOUT * 2);
    idp_outage::run(
        "IDP hung (SIGSTOP) for longer than every timeout, then SIGCONT",
        |s| s.idp.proc.signal("STOP").unwrap(),
        |s| s.idp.proc.signal("CONT").unwrap(),
    );
}
