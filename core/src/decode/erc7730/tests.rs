//! Engine tests on small hand-written descriptors.
