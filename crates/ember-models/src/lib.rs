//! ember-models (work in progress)
