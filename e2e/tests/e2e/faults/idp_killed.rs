//! The IDP killed with SIGKILL under load, then started again on the same port and database.

use super::idp_outage;

#[test]
fn idp_killed_under_load_then_restarted_on_its_database() {
    let _slot = crate::slot();
    idp_outage::run(
        "IDP killed (SIGKILL), restarted on its port and database",
        |s| s.idp.proc.stop(), // SIGKILL
        |s| {
            let database = s.database();
            s.restart_idp("idp-again", &database);
        },
    );
}
