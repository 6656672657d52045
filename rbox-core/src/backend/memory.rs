//! In-memory backend (to be written).
