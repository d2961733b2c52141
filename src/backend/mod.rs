//! Python backends: the supervisor and the clients for every transport (issue #5).
