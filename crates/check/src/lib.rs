//! trunkgate-check (issue 6): being written.
