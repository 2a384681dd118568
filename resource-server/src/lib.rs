//! resource-server
