//! host-test
