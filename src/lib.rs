//! Ember facade (work in progress)
