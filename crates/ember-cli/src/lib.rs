//! ember-cli (work in progress)
