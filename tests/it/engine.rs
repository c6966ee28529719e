//! End-to-end tests of the training engine (being written).
