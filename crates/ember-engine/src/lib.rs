//! ember-engine (work in progress)
