//! Test fixtures shared by keyfleet's crates.
//!
//! [`SoftHsmLab`] makes a throwaway SoftHSM2 token directory with its own configuration file and
//! creates tokens in it with `softhsm2-util`, the way an operator would.

mod softhsm;

pub use softhsm::{SoftHsmLab, SoftHsmToken, softhsm_module_path};
